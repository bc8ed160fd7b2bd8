"""Claims of the chapter "Data augmentation" (``book/04-augmentation.md``).

Most rest on ``results/augmentation.json`` (``python -m convnets.experiments augmentation``: the
same CNN trained on 500, 1,000 and 4,000 MNIST-5k digits with and without augmentation, and with
a label-breaking one, from three seeds). The test-time augmentation claims rest on
``results/augmentation_tta.json`` (``python -m convnets.experiments augmentation_tta``: every
scheme on the two seed-0 networks saved with those results, scored per test image, forward
passes counted); :func:`tta_results` reads them for the chapter and for the claims.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from . import Outcome, Stat, claim, results, verdict_from

from ..experiments.augmentation_tta import (  # noqa: F401  (the chapter uses them through this module)
    AFFINE8, AFFINE16, PLAIN, SHIFT5, TEN, TTA_NAMES, load_nets, tta_schemes)


def pick(r: dict, n: int, arm: str, key: str) -> list:
    """``key`` of every run with ``n`` images and augmentation ``arm``, in seed order."""
    runs = sorted((x for x in r["runs"] if x["n"] == n and x["arm"] == arm), key=lambda x: x["seed"])
    return [x[key] for x in runs]


def gains(r: dict, n: int) -> Stat:
    """Per-seed test-accuracy gain (augmented - none, in points) with ``n`` images."""
    a, b = pick(r, n, "none", "test_acc"), pick(r, n, "augmented", "test_acc")
    return Stat([100 * (y - x) for x, y in zip(a, b)], ".1f")


def tta_results() -> dict[str, dict[str, dict[str, Any]]]:
    """For each scheme and each network, from ``results/augmentation_tta.json``: ``correct``
    (bool tensor over the test images) and ``passes``, the number of forward passes per image
    counted by a hook."""
    r = results("augmentation_tta")
    return {name: {arm: {"correct": torch.tensor(r["correct"][name][arm], dtype=torch.bool),
                         "passes": r["passes"][name][arm]} for arm in r["arms"]}
            for name in r["schemes"]}


def paired(name: str, arm: str) -> tuple[float, float]:
    """Change in test accuracy (points) from the plain prediction to scheme ``name`` for network
    ``arm``, and its standard error over the 1,000 test images (paired: the same images)."""
    t = tta_results()
    d = t[name][arm]["correct"].double() - t[PLAIN][arm]["correct"].double()
    return 100 * d.mean().item(), 100 * d.std().item() / math.sqrt(len(d))


def _fmt(diff: float, se: float) -> str:
    n = len(tta_results()[PLAIN]["none"]["correct"])
    return f"{diff:+.1f} ± {se:.2f} points (paired standard error over {n:,} test images)"


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
       "augmentation does not help: at the last epoch the augmented network is below the plain one "
       "in every seed.",
       uses=("augmentation",))
def _():
    r = results("augmentation")
    g = gains(r, 4000)
    a = Stat(pick(r, 4000, "none", "test_acc"))
    b = Stat(pick(r, 4000, "augmented", "test_acc"))
    return Outcome(g.max < 0, f"gain {g}; plain {a}, augmented {b}; ranges "
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
    return Outcome(holds, f"clean training accuracy, plain {100 * min(none):.2f}–{100 * max(none):.2f} %, "
                   f"augmented {100 * min(aug):.2f}–{100 * max(aug):.2f} %",
                   values={"aug_max": 100 * max(aug), "aug_min": 100 * min(aug)})


@claim("04", "underfit-4000", "With 4,000 images, over the last quarter of the budget (epochs 9 to "
       "12) the plain network's accuracy on its clean training images still rises in every seed, "
       "by more than the augmented network's changes; the augmented one levels off and ends below "
       "the plain one in every seed.", uses=("augmentation",))
def _():
    r = results("augmentation")
    a = Stat([100 * v for v in pick(r, 4000, "none", "train_acc")], ".1f")
    b = Stat([100 * v for v in pick(r, 4000, "augmented", "train_acc")], ".1f")
    rise = {arm: [100 * (c["train_acc"][-1] - c["train_acc"][-4]) for c in pick(r, 4000, arm, "curve")]
            for arm in ("none", "augmented")}
    holds = (a.above(b) and min(rise["none"]) > 0
             and all(x > y for x, y in zip(rise["none"], rise["augmented"])))
    rn, ra = Stat(rise["none"], "+.1f"), Stat(rise["augmented"], "+.1f")
    return Outcome(holds, f"clean training accuracy at the end, %: plain {a}, augmented {b}; change "
                   f"from epoch 9 to 12, points: plain {rn}, augmented {ra}",
                   values={"none": a.mean, "aug": b.mean, "none_min": a.min, "none_max": a.max,
                           "aug_min": b.min, "aug_max": b.max, "rise_none_min": rn.min,
                           "rise_none_max": rn.max, "rise_aug_min": ra.min, "rise_aug_max": ra.max})


@claim("04", "gain-4000-swings", "With 4,000 images the mean final deficit of the augmented "
       "network is about the size of the largest epoch-to-epoch swing of a test curve over the last "
       "four epochs (between half of it and, to the printed 0.1 point, all of it), though two seeds' deficits are larger; and at each of epochs 9, 10 and "
       "11 at least one seed's gain is positive.", uses=("augmentation",))
def _():
    r = results("augmentation")
    g = gains(r, 4000)
    curves = {arm: pick(r, 4000, arm, "curve") for arm in ("none", "augmented")}
    swing = max(abs(c["test_acc"][k] - c["test_acc"][k - 1]) * 100
                for arm in curves for c in curves[arm] for k in range(len(c["test_acc"]) - 4, len(c["test_acc"])))
    mid = [[100 * (b - a) for a, b in zip(cn["test_acc"][8:11], ca["test_acc"][8:11])]
           for cn, ca in zip(curves["none"], curves["augmented"])]  # epochs 9-11, per seed
    positive = [e + 9 for e in range(3) if any(m[e] > 0 for m in mid)]
    larger = [x for x in g.values if -x > swing]  # seeds whose final deficit exceeds the swing
    holds = swing / 2 <= abs(g.mean) and round(abs(g.mean), 1) <= round(swing, 1) and positive == [9, 10, 11] and len(larger) == 2
    return Outcome(holds, f"final gain {g}; largest epoch-to-epoch change of a test curve over the last "
                   f"four epochs {swing:.1f} points; seeds with a larger deficit: "
                   f"{', '.join(f'{x:+.1f}' for x in larger) or 'none'}; epochs with a positive seed: {positive}",
                   values={"swing": swing, "n_positive_epochs": len(positive), "mean_abs": abs(g.mean),
                           "larger_a": max(larger, default=math.nan), "larger_b": min(larger, default=math.nan)})


@claim("04", "wrong-arm", "Training with a label-breaking augmentation (any rotation and "
       "left-right flips) ends more than 10 points below no augmentation at all, in every seed, "
       "and confuses 6 and 9 more often.", uses=("augmentation",))
def _():
    r = results("augmentation")
    none = Stat([100 * v for v in pick(r, 1000, "none", "test_acc")], ".1f")
    wrong = Stat([100 * v for v in pick(r, 1000, "wrong", "test_acc")], ".1f")
    conf = {arm: sum(c[6][9] + c[9][6] for c in pick(r, 1000, arm, "confusion")) for arm in ("none", "wrong")}
    holds = none.above(wrong, 10) and conf["wrong"] > conf["none"]
    return Outcome(holds, f"test accuracy, %: none {none}, wrong {wrong}; 6↔9 confusions summed over seeds: "
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
    ok, part, ev, vals = True, False, [], {}
    for n in r["sizes"]:
        gap = {arm: [tr - te for tr, te in zip(pick(r, n, arm, "train_acc"), pick(r, n, arm, "test_acc"))]
               for arm in ("none", "augmented")}
        every = all(b < a for a, b in zip(gap["none"], gap["augmented"]))
        ok &= every
        part |= every
        vals[f"none_{n}"] = 100 * Stat(gap["none"]).mean
        ev.append(f"{n} images: gap plain {100 * Stat(gap['none']).mean:.1f}, augmented "
                  f"{100 * Stat(gap['augmented']).mean:.1f} points")
    return Outcome(ok, "; ".join(ev) + f" (means of {len(r['seeds'])} seeds)", values=vals,
                   verdict=verdict_from(ok, part))


@claim("04", "scale-jitter", "Training-time augmentation lowers the test error, at every "
       "training-set size.", uses=("augmentation",),
       paper="scale jittering, training scale S ∈ [256; 512] instead of a fixed S = 384, lowers VGG "
             "E's top-1 / top-5 error from 26.9 / 8.7 % to 25.5 / 8.0 %, both tested at Q = 384 "
             "(VGG Table 3, ImageNet val, single test scale)",
       expect="partly")
def _():
    r = results("augmentation")
    ev, full, part = [], True, False
    for n in r["sizes"]:
        e0 = Stat([100 * (1 - v) for v in pick(r, n, "none", "test_acc")], ".1f")
        e1 = Stat([100 * (1 - v) for v in pick(r, n, "augmented", "test_acc")], ".1f")
        d = Stat([b - a for a, b in zip(e0.values, e1.values)], "+.1f")
        lower = d.max < 0  # lower in every seed
        full &= lower
        part |= lower
        ev.append(f"{n} images: {e0.mean:.1f} → {e1.mean:.1f} % (change {d.mean:+.1f} ± {d.std:.1f} "
                  f"points, range {d.min:+.1f} to {d.max:+.1f})")
    return Outcome(full, f"test error without → with augmentation, mean of {len(r['seeds'])} seeds: "
                   + "; ".join(ev), verdict=verdict_from(full, part))


# ---------------------------------------------------------------- test-time augmentation (live)

@claim("04", "tta-passes", "Test-time augmentation with n views costs n forward passes of the "
       "network: counted, not timed.", uses=("augmentation_tta",))
def _():
    t = tta_results()
    want = {PLAIN: 1, SHIFT5: 5, AFFINE8: 8, AFFINE16: 16, TEN: 10}
    got = {k: t[k][arm]["passes"] for k in want for arm in ("none", "augmented")}
    holds = all(t[k][arm]["passes"] == want[k] for k in want for arm in ("none", "augmented"))
    return Outcome(holds, "forward passes per test image: " + ", ".join(
        f"{k.split(' (')[0]} {t[k]['augmented']['passes']:g}" for k in want),
        values={"passes8": t[AFFINE8]["augmented"]["passes"], "passes16": t[AFFINE16]["augmented"]["passes"],
                "ok": len(got)})


@claim("04", "tta-ten-crops", "Averaging the softmax over ten views of each test image (four corner "
       "crops, the centre crop and their mirror images) lowers the test error.",
       paper="10 patches (corners, centre and their mirror images): AlexNet's top-1 / top-5 error "
             "39.0 / 18.3 % → 37.5 / 17.0 % (ILSVRC-2010 test)", expect="not reproduced here",
       uses=("augmentation_tta",))
def _():
    diff, se = paired(TEN, "augmented")
    d5, s5 = paired(SHIFT5, "augmented")
    full = diff > 2 * se
    part = diff > 0
    return Outcome(full, f"test error change of the augmented network: 10 views {-diff:+.1f} ± {se:.2f} "
                   f"points (5 shifted crops without mirror images: {-d5:+.1f} ± {s5:.2f}; paired "
                   "standard errors over 1,000 test images)", verdict=verdict_from(full, part))


@claim("04", "tta-flips-hurt", "On digits the ten AlexNet-style views lower the augmented network's "
       "test accuracy by more than two standard errors: their mirror images are not digits.",
       uses=("augmentation_tta",))
def _():
    diff, se = paired(TEN, "augmented")
    return Outcome(diff < -2 * se, f"10 crops with flips, augmented network: {_fmt(diff, se)}",
                   values={"diff": diff, "se": se})


@claim("04", "tta-affine", "Averaging the predictions over several random views of each test image "
       "(here: the training augmentation's affine moves) lowers the test error.",
       paper="multi-crop evaluation added to dense evaluation: VGG E's top-1 / top-5 error 25.5 / "
             "8.0 % (dense, single scale, flipped images already averaged) → 24.4 / 7.1 % "
             "(ImageNet val; this gain mixes more views with more test scales)",
       expect="not reproduced here", uses=("augmentation_tta",))
def _():
    d8, s8 = paired(AFFINE8, "augmented")
    d16, s16 = paired(AFFINE16, "augmented")
    full = d8 > 2 * s8 and d16 > 2 * s16  # lower error beyond two standard errors for both
    part = d8 > 2 * s8 or d16 > 2 * s16  # beyond two standard errors for one of them
    noise = "within two standard errors of zero, direction agrees" if not part and d8 > 0 and d16 > 0 else ""
    return Outcome(full, f"test error change of the augmented network: 8 views {-d8:+.1f} ± {s8:.2f}, "
                   f"16 views {-d16:+.1f} ± {s16:.2f} points (paired standard errors over 1,000 test "
                   f"images){': ' + noise if noise else ''}", values={"d8": d8, "s8": s8, "d16": d16, "s16": s16},
                   verdict=verdict_from(full, part))


@claim("04", "tta-affine-noise", "On our 1,000 test images the change that 8 or 16 random affine "
       "views bring to the augmented network is within two standard errors of zero, in the "
       "direction of a gain.",
       uses=("augmentation_tta",))
def _():
    d8, s8 = paired(AFFINE8, "augmented")
    d16, s16 = paired(AFFINE16, "augmented")
    return Outcome(0 < d8 <= 2 * s8 and 0 < d16 <= 2 * s16, f"8 views {_fmt(d8, s8)}; 16 views {_fmt(d16, s16)}")


@claim("04", "tta-shift5-noise", "The five shifted crops without mirror images change the augmented "
       "network's test accuracy by less than two standard errors.", uses=("augmentation_tta",))
def _():
    d, se = paired(SHIFT5, "augmented")
    return Outcome(abs(d) < 2 * se, f"5 shifted crops, augmented network: {_fmt(d, se)}",
                   values={"d": d, "se": se})


@claim("04", "tta-affine-none", "For the network trained without augmentation, 8 random affine "
       "views lower the test accuracy by more than two standard errors.", uses=("augmentation_tta",))
def _():
    d, se = paired(AFFINE8, "none")
    return Outcome(d < -2 * se, f"8 random affine views, network trained without augmentation: "
                   f"{_fmt(d, se)}", values={"d": d, "se": se})


@claim("04", "wrong-arm-classes", "With the label-breaking augmentation the network still tells "
       "6 from 9 in most cases, but 6 falls below 60 % test accuracy and is not the only class that "
       "pays: at least three other classes fall below 60 % too, and another pair of classes is "
       "confused more often than 6 and 9.", uses=("augmentation",))
def _():
    r = results("augmentation")
    cm = [[sum(c[i][j] for c in pick(r, 1000, "wrong", "confusion")) for j in range(10)] for i in range(10)]
    acc = {i: 100 * cm[i][i] / sum(cm[i]) for i in range(10)}
    low = sorted((i for i in acc if acc[i] < 60 and i != 6), key=acc.get)
    pairs = sorted(((cm[i][j] + cm[j][i], i, j) for i in range(10) for j in range(i + 1, 10)), reverse=True)
    six_nine = cm[6][9] + cm[9][6]
    above = [(n, i, j) for n, i, j in pairs if n > six_nine]
    n69 = sum(cm[6]) + sum(cm[9])
    holds = len(low) >= 3 and bool(above) and acc[6] < 60 and six_nine < n69 / 2
    return Outcome(holds, f"summed over seeds: classes other than 6 below 60 %: "
                   + ", ".join(f"{i} {acc[i]:.1f} %" for i in low) + f" (6: {acc[6]:.1f} %); 6↔9 "
                   f"{six_nine} of {n69} test 6s and 9s; pairs confused more often: " + ", ".join(f"{i}↔{j} {n}" for n, i, j in above),
                   values={"acc6": acc[6], "low": ", ".join(str(i) for i in sorted(low)),
                           "six_nine": six_nine, "six_as_nine": cm[6][9], "nine_as_six": cm[9][6],
                           "n69": n69, "top_pair": f"{pairs[0][1]} and {pairs[0][2]}",
                           "top_count": pairs[0][0],
                           "second_pair": f"{pairs[1][1]} and {pairs[1][2]}", "second_count": pairs[1][0]})
