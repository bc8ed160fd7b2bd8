"""Claims of the chapter "Data augmentation" (``book/04-augmentation.md``).

Most rest on ``results/augmentation.json`` (``python -m convnets.experiments augmentation``: the
same CNN trained on 500, 1,000 and 4,000 MNIST-5k digits with and without augmentation, and with
a label-breaking one, from three seeds). The test-time augmentation claims are live: they load
the two seed-0 networks saved with those results and count and score their forward passes; the
helper :func:`tta_results` computes them once, for the chapter and for the claims.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch

from . import Outcome, Stat, claim, results, verdict_from

#: The test-time schemes of the chapter: name -> (kind, argument); see :func:`tta_schemes`.
TTA_NAMES = ("plain (1 view)", "5 crops: shifts of ±2 px (5 views)", "random affine (8 views)",
             "random affine (16 views)", "10 crops: shifts and flips (10 views)")
PLAIN, SHIFT5, AFFINE8, AFFINE16, TEN = TTA_NAMES


def pick(r: dict, n: int, arm: str, key: str) -> list:
    """``key`` of every run with ``n`` images and augmentation ``arm``, in seed order."""
    runs = sorted((x for x in r["runs"] if x["n"] == n and x["arm"] == arm), key=lambda x: x["seed"])
    return [x[key] for x in runs]


def gains(r: dict, n: int) -> Stat:
    """Per-seed test-accuracy gain (augmented - none, in points) with ``n`` images."""
    a, b = pick(r, n, "none", "test_acc"), pick(r, n, "augmented", "test_acc")
    return Stat([100 * (y - x) for x, y in zip(a, b)], ".1f")


def tta_schemes() -> dict[str, dict[str, Any]]:
    """The keyword arguments of :func:`convnets.augment.tta_predict` for each scheme of the chapter."""
    from .. import augment

    return {
        PLAIN: dict(transforms=None),
        SHIFT5: dict(transforms=augment.five_crop_views(28, padding=2)),
        AFFINE8: dict(transforms=augment.digits_batch_augment(seed=0), n=8),
        AFFINE16: dict(transforms=augment.digits_batch_augment(seed=0), n=16),
        TEN: dict(transforms=augment.ten_crop_views(28, padding=2)),
    }


def load_nets() -> dict[str, torch.nn.Module]:
    """The seed-0 networks trained on 1,000 images without (``"none"``) and with
    (``"augmented"``) augmentation, saved by the experiment, in eval mode."""
    from ..experiments import results_dir
    from ..experiments.augmentation import make_model
    from ..train import load_checkpoint
    from . import MissingResults

    nets = {}
    for arm in ("none", "augmented"):
        path = results_dir() / f"augmentation_{arm}_n1000.pt"
        if not path.is_file():
            raise MissingResults(f"no checkpoint {path}: run `python -m convnets.experiments augmentation`")
        nets[arm] = make_model()
        load_checkpoint(path, nets[arm])
        nets[arm].eval()
    return nets


@lru_cache(maxsize=None)
def tta_results() -> dict[str, dict[str, dict[str, Any]]]:
    """For each scheme and each network: ``correct`` (bool tensor over the 1,000 test images) and
    ``passes``, the number of forward passes counted by a hook (images through the model / 1,000)."""
    from .. import augment
    from ..data import mnist5k

    d = mnist5k()
    Xt, yt = d.X_test, d.y_test
    nets = load_nets()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, kw in tta_schemes().items():
        out[name] = {}
        for arm, net in nets.items():
            if isinstance(kw["transforms"], augment.BatchAugment):
                kw["transforms"].reset()
            seen = [0]
            h = net.register_forward_hook(lambda m, i, o: seen.__setitem__(0, seen[0] + len(i[0])))
            try:
                with torch.inference_mode():
                    pred = augment.tta_predict(net, Xt, **kw).argmax(1)
            finally:
                h.remove()
            out[name][arm] = {"correct": pred == yt, "passes": seen[0] / len(Xt)}
    return out


def paired(name: str, arm: str) -> tuple[float, float]:
    """Change in test accuracy (points) from the plain prediction to scheme ``name`` for network
    ``arm``, and its standard error over the 1,000 test images (paired: the same images)."""
    t = tta_results()
    d = t[name][arm]["correct"].double() - t[PLAIN][arm]["correct"].double()
    return 100 * d.mean().item(), 100 * d.std().item() / math.sqrt(len(d))


def _fmt(diff: float, se: float) -> str:
    return f"{diff:+.1f} ± {se:.1f} points (paired standard error over 1,000 test images)"


# ---------------------------------------------------------------- training with augmentation

@claim("04", "gain-500", "With 500 training images augmentation raises the test accuracy in every "
       "seed.", uses=("augmentation",))
def _():
    r = results("augmentation")
    g = gains(r, 500)
    return Outcome(g.min > 0, f"gain {g}", values={"mean": g.mean, "std": g.std, "min": g.min, "max": g.max})


@claim("04", "gain-1000", "With 1,000 training images augmentation raises the test accuracy in "
       "every seed.", uses=("augmentation",))
def _():
    r = results("augmentation")
    g = gains(r, 1000)
    return Outcome(g.min > 0, f"gain {g}", values={"mean": g.mean, "std": g.std, "min": g.min, "max": g.max})


@claim("04", "gain-4000", "With 4,000 training images and the same budget of 48,000 images seen, "
       "augmentation does not help: the augmented network ends below the plain one on average.",
       uses=("augmentation",))
def _():
    r = results("augmentation")
    g = gains(r, 4000)
    a = Stat(pick(r, 4000, "none", "test_acc"))
    b = Stat(pick(r, 4000, "augmented", "test_acc"))
    return Outcome(g.mean < 0, f"gain {g}; plain {a}, augmented {b}; ranges "
                   f"{'overlap' if a.overlaps(b) else 'do not overlap'}",
                   values={"mean": g.mean, "std": g.std, "overlap": a.overlaps(b)})


@claim("04", "memorises", "Without augmentation the network fits all of its 500 or 1,000 training "
       "images in every seed; with augmentation its accuracy on those clean images stays below "
       "100 %.", uses=("augmentation",))
def _():
    r = results("augmentation")
    none = [v for n in (500, 1000) for v in pick(r, n, "none", "train_acc")]
    aug = [v for n in (500, 1000) for v in pick(r, n, "augmented", "train_acc")]
    holds = min(none) == 1.0 and max(aug) < 1.0
    return Outcome(holds, f"clean training accuracy, plain {min(none):.4f}–{max(none):.4f}, "
                   f"augmented {min(aug):.4f}–{max(aug):.4f}",
                   values={"aug_max": max(aug), "aug_min": min(aug)})


@claim("04", "underfit-4000", "With 4,000 images the augmented network has not finished fitting "
       "its training set when the budget ends: its accuracy on its clean training images is below "
       "the plain network's in every seed.", uses=("augmentation",))
def _():
    r = results("augmentation")
    a = Stat(pick(r, 4000, "none", "train_acc"))
    b = Stat(pick(r, 4000, "augmented", "train_acc"))
    return Outcome(a.above(b), f"clean training accuracy: plain {a}, augmented {b}",
                   values={"none": a.mean, "aug": b.mean})


@claim("04", "wrong-arm", "Training with a label-breaking augmentation (any rotation and "
       "left-right flips) ends more than 10 points below no augmentation at all, in every seed, "
       "and confuses 6 and 9 more often.", uses=("augmentation",))
def _():
    r = results("augmentation")
    none = Stat(pick(r, 1000, "none", "test_acc"))
    wrong = Stat(pick(r, 1000, "wrong", "test_acc"))
    conf = {arm: sum(c[6][9] + c[9][6] for c in pick(r, 1000, arm, "confusion")) for arm in ("none", "wrong")}
    holds = none.above(wrong, 0.10) and conf["wrong"] > conf["none"]
    return Outcome(holds, f"test accuracy: none {none}, wrong {wrong}; 6↔9 confusions summed over seeds: "
                   f"none {conf['none']}, wrong {conf['wrong']}",
                   values={"none": none.mean, "none_std": none.std, "wrong": wrong.mean,
                           "wrong_std": wrong.std, "conf_none": conf["none"], "conf_wrong": conf["wrong"]})


@claim("04", "overfitting-gap", "Augmentation narrows the gap between training and test accuracy "
       "at every training-set size, in every seed.", uses=("augmentation",),
       paper="\"Without this scheme, our network suffers from substantial overfitting\" "
             "(AlexNet, Krizhevsky et al. 2012, Sec. 4.1; random crops and flips)",
       expect="reproduced")
def _():
    r = results("augmentation")
    ok, part, ev = True, False, []
    for n in r["sizes"]:
        gap = {arm: [tr - te for tr, te in zip(pick(r, n, arm, "train_acc"), pick(r, n, arm, "test_acc"))]
               for arm in ("none", "augmented")}
        every = all(b < a for a, b in zip(gap["none"], gap["augmented"]))
        ok &= every
        part |= every
        ev.append(f"{n} images: gap plain {100 * Stat(gap['none']).mean:.1f}, augmented "
                  f"{100 * Stat(gap['augmented']).mean:.1f} points")
    return Outcome(ok, "; ".join(ev) + f" (means of {len(r['seeds'])} seeds)", verdict=verdict_from(ok, part))


@claim("04", "scale-jitter", "Training-time augmentation lowers the test error at every training-set "
       "size.", uses=("augmentation",),
       paper="scale jittering S ∈ [256; 512] lowers VGG E's top-1 / top-5 error from 27.3 / 9.0 % "
             "(S = 256) to 25.5 / 8.0 % (VGG Table 3, ImageNet val, single scale)",
       expect="partly")
def _():
    r = results("augmentation")
    g = {n: gains(r, n) for n in r["sizes"]}
    full = all(s.min > 0 for s in g.values())
    part = any(s.min > 0 for s in g.values())
    ev = "; ".join(f"{n} images: {s}" for n, s in g.items())
    return Outcome(full, "accuracy gain, points: " + ev, verdict=verdict_from(full, part))


# ---------------------------------------------------------------- test-time augmentation (live)

@claim("04", "tta-passes", "Test-time augmentation with n views costs n forward passes of the "
       "network: counted, not timed.")
def _():
    t = tta_results()
    want = {PLAIN: 1, SHIFT5: 5, AFFINE8: 8, AFFINE16: 16, TEN: 10}
    got = {k: t[k][arm]["passes"] for k in want for arm in ("none", "augmented")}
    holds = all(t[k][arm]["passes"] == want[k] for k in want for arm in ("none", "augmented"))
    return Outcome(holds, "forward passes per test image: " + ", ".join(
        f"{k.split(' (')[0]} {t[k]['augmented']['passes']:g}" for k in want),
        values={"passes8": t[AFFINE8]["augmented"]["passes"], "passes16": t[AFFINE16]["augmented"]["passes"],
                "ok": len(got)})


@claim("04", "tta-flips-hurt", "The ten AlexNet-style crops include mirror images, which are not "
       "digits: for the augmented network they lower the test accuracy.",
       paper="10 patches (corners, centre and their flips): AlexNet's top-1 / top-5 error 39.0 / 18.3 % "
             "-> 37.5 / 17.0 % (ILSVRC-2010 test)", expect="not reproduced here")
def _():
    diff, se = paired(TEN, "augmented")
    full = diff > 2 * se
    part = diff > 0
    return Outcome(full, f"10 crops with flips, augmented network: {_fmt(diff, se)}",
                   values={"diff": diff, "se": se}, verdict=verdict_from(full, part))


@claim("04", "tta-affine", "Averaging over random affine views (the training augmentation) changes "
       "the augmented network's test accuracy by less than the noise or improves it.",
       paper="multi-crop and dense evaluation: VGG E's top-1 / top-5 error 25.5 / 8.0 % -> "
             "24.4 / 7.1 % (ImageNet val)", expect="partly")
def _():
    d8, s8 = paired(AFFINE8, "augmented")
    d16, s16 = paired(AFFINE16, "augmented")
    full = d8 > 2 * s8 and d16 > 2 * s16
    part = d8 > -2 * s8 and d16 > -2 * s16
    return Outcome(full, f"8 views {_fmt(d8, s8)}; 16 views {_fmt(d16, s16)}",
                   values={"d8": d8, "s8": s8, "d16": d16, "s16": s16}, verdict=verdict_from(full, part))


@claim("04", "tta-affine-noise", "On our 1,000 test images the change that 8 or 16 random affine "
       "views bring to the augmented network is within two standard errors of zero.")
def _():
    d8, s8 = paired(AFFINE8, "augmented")
    d16, s16 = paired(AFFINE16, "augmented")
    return Outcome(abs(d8) <= 2 * s8 and abs(d16) <= 2 * s16, f"8 views {_fmt(d8, s8)}; 16 views {_fmt(d16, s16)}")
