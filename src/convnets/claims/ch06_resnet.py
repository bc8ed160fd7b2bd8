"""Claims of the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``).

Most rest on cached results: the degradation runs (``results/degradation.json``: plain and
residual networks of 8, 20 and 56 layers on MNIST 5k, with warm-up; ``degradation_nowarmup.json``:
the same without warm-up) and the first-layer gradients at initialisation
(``gradient_at_init.json``); the others are cheap live counts (parameters, multiply-adds on the
meta device, torchvision's models).
"""
from __future__ import annotations

import functools
import math

import torch

from . import Outcome, Stat, claim, results, verdict_from

#: He et al. (2016), Table 6 (CIFAR-10): depth -> (parameters in M, test error %).
TABLE6 = {20: (0.27, 8.75), 32: (0.46, 7.51), 44: (0.66, 7.17), 56: (0.85, 6.97), 110: (1.7, 6.43),
          1202: (19.4, 7.93)}
#: torchvision's parameter counts (its model documentation) and the paper's Table 1 "FLOPs"
#: (multiply-adds, G).
IMAGENET = {"resnet18": (11_689_512, 1.8), "resnet34": (21_797_672, 3.6), "resnet50": (25_557_032, 3.8),
            "resnet101": (44_549_160, 7.6), "resnet152": (60_192_808, 11.3)}


def _summary(name: str) -> dict[tuple[str, int], dict]:
    return {(s["kind"], s["depth"]): s for s in results(name)["summary"]}


def _stat(name: str, kind: str, depth: int, what: str = "train_error") -> Stat:
    return Stat(_summary(name)[(kind, depth)][f"{what}_per_seed"], fmt=".2f")


# --- the degradation problem, with warm-up (the chapter's main run) -------------------------

@claim("06", "plain-degrades",
       "The 56-layer plain network ends with a training error more than five times the 20-layer "
       "plain network's, in every seed, and its test error is as high (within 3 points of its "
       "training error): not overfitting.", uses=("degradation",))
def _plain_degrades():
    p20, p56 = _stat("degradation", "plain", 20), _stat("degradation", "plain", 56)
    t56 = _stat("degradation", "plain", 56, "test_error")
    return Outcome(p56.min > 5 * p20.max and abs(t56.mean - p56.mean) < 3,
                   f"training error %: plain-56 {p56}, plain-20 {p20} ({_spread(p56, p20)}; the lowest "
                   f"plain-56 run {p56.min / p20.max:.0f} times the highest plain-20 run); test error % "
                   f"plain-56 {t56}",
                   values={"p20": p20.mean, "p56": p56.mean, "ratio": p56.mean / p20.mean,
                           "p20_std": p20.std, "p56_std": p56.std, "n": p56.n})


def _spread(a: Stat, b: Stat) -> str:
    """Whether the difference between two sets of runs exceeds the spread between seeds."""
    if a.overlaps(b):
        return "ranges overlap: within the spread between seeds"
    return "ranges do not overlap: larger than the spread between seeds"


@claim("06", "plain-shallow-close",
       "The 8- and 20-layer plain networks end within one percentage point of training error of "
       "each other; the 20-layer one is lower in every seed (the ranges do not overlap).",
       uses=("degradation",))
def _plain_shallow():
    p8, p20 = _stat("degradation", "plain", 8), _stat("degradation", "plain", 20)
    diff = p8.mean - p20.mean
    return Outcome(abs(diff) < 1.0 and p8.above(p20),
                   f"training error %: plain-8 {p8}, plain-20 {p20}; difference of the means "
                   f"{diff:.2f} points ({_spread(p8, p20)})",
                   values={"p8": p8.mean, "p8_std": p8.std, "diff": diff})


@claim("06", "residual-rescues-56",
       "At 56 layers the residual network ends with a lower training error and a lower test error "
       "than the plain network of the same seed (same initial seed, same batches), in every seed; "
       "but the ranges overlap: its worst seed ends above the best plain run, so the difference is "
       "not larger than the spread between seeds by the strict test.", uses=("degradation",))
def _residual_rescues():
    r, p = _stat("degradation", "residual", 56), _stat("degradation", "plain", 56)
    rt, pt = (_stat("degradation", "residual", 56, "test_error"),
              _stat("degradation", "plain", 56, "test_error"))
    paired = (all(a < b for a, b in zip(r.values, p.values))
              and all(a < b for a, b in zip(rt.values, pt.values)))
    return Outcome(paired and r.overlaps(p),
                   f"training error %: residual-56 {r} vs plain-56 {p} ({_spread(r, p)}); test error %: "
                   f"residual-56 {rt} vs plain-56 {pt} ({_spread(rt, pt)})",
                   values={"r56": r.mean, "r56_std": r.std, "r56_test": rt.mean, "p56_test": pt.mean,
                           "r56_test_std": rt.std, "p56_test_std": pt.std, "r56_max": r.max,
                           "p56_min": p.min, "p56": p.mean, "p56_std": p.std})


@claim("06", "twenty-within-noise",
       "At 20 layers plain and residual networks end with training errors within the spread "
       "between seeds (their ranges overlap).", uses=("degradation",))
def _twenty():
    r, p = _stat("degradation", "residual", 20), _stat("degradation", "plain", 20)
    return Outcome(r.overlaps(p) and abs(r.mean - p.mean) < 0.5,
                   f"training error %: residual-20 {r}, plain-20 {p}; difference of the means "
                   f"{r.mean - p.mean:+.2f} points ({_spread(r, p)})",
                   values={"r20": r.mean, "r20_std": r.std})


@claim("06", "residual-56-behind-20",
       "At this scale the 56-layer residual network does not reach the 20-layer ones: its training "
       "error and its test error stay above the residual-20 network's in every seed.",
       uses=("degradation",))
def _residual_behind():
    r20, r56 = _stat("degradation", "residual", 20), _stat("degradation", "residual", 56)
    t20, t56 = (_stat("degradation", "residual", 20, "test_error"),
                _stat("degradation", "residual", 56, "test_error"))
    return Outcome(r56.above(r20) and t56.above(t20),
                   f"training error %: residual-56 {r56}, residual-20 {r20} ({_spread(r56, r20)}); test "
                   f"error %: residual-56 {t56}, residual-20 {t20} ({_spread(t56, t20)})",
                   values={"r20": r20.mean, "r56": r56.mean, "t20": t20.mean, "t56": t56.mean})


@claim("06", "warmup-spike",
       "When the learning rate jumps from 0.01 to 0.1 after the warm-up, the 56-layer residual "
       "network's training accuracy falls for an epoch, in every seed.", uses=("degradation",))
def _spike():
    r = results("degradation")
    w = r["config"]["warmup_epochs"]
    drops = []
    for run in r["runs"]:
        if run["kind"] == "residual" and run["depth"] == 56:
            acc = run["history"]["train_acc"]
            drops.append(100 * (acc[w - 1] - acc[w]))
    s = Stat(drops, fmt=".1f")
    return Outcome(w > 0 and s.min > 1.0,
                   f"fall of training accuracy in epoch {w + 1} (first at lr 0.1), points: {s}",
                   values={"drop": s.mean, "drop_min": s.min, "drop_max": s.max, "epoch": w + 1})


@claim("06", "plain-56-slow-start",
       "At the end of the warm-up (the epochs at learning rate 0.01) the 56-layer plain network's "
       "training error is higher than the 20-layer plain network's in every seed.",
       uses=("degradation",))
def _slow_start():
    r = results("degradation")
    w = r["config"]["warmup_epochs"]
    err = {d: Stat([100 * (1 - run["history"]["train_acc"][w - 1]) for run in r["runs"]
                    if run["kind"] == "plain" and run["depth"] == d], ".1f") for d in (20, 56)}
    return Outcome(w > 0 and err[56].above(err[20]),
                   f"training error % in epoch {w} (last at lr {r['config']['lr'] / 10:g}): "
                   f"plain-56 {err[56]}, plain-20 {err[20]}",
                   values={"p56": err[56].mean, "p20": err[20].mean, "epoch": w})


# --- without warm-up -----------------------------------------------------------------------

@claim("06", "nowarmup-56-fails",
       "Without warm-up, the 56-layer networks of both kinds end with training errors more than "
       "ten times the worst 20-layer network's, in every seed, and one residual seed stays at the "
       "loss of a uniform guess (ln 10).", uses=("degradation_nowarmup",))
def _nowarm():
    r = results("degradation_nowarmup")
    s = _summary("degradation_nowarmup")
    e56 = Stat(s[("plain", 56)]["train_error_per_seed"] + s[("residual", 56)]["train_error_per_seed"], ".2f")
    e20 = Stat(s[("plain", 20)]["train_error_per_seed"] + s[("residual", 20)]["train_error_per_seed"], ".2f")
    losses = [run["history"]["train_loss"][-1] for run in r["runs"]
              if run["kind"] == "residual" and run["depth"] == 56]
    stuck = sum(abs(v - math.log(10)) < 0.05 for v in losses)
    return Outcome(e56.min > 10 * e20.max and stuck >= 1,
                   f"training error %: 56 layers (both kinds) {e56}, 20 layers {e20}; final training "
                   f"losses of residual-56: {', '.join(f'{v:.3f}' for v in losses)} (ln 10 = 2.303)",
                   values={"e56_min": e56.min, "e20_max": e20.max, "stuck": stuck})


@claim("06", "warmup-helps-residual-56",
       "With warm-up every seed of the 56-layer residual network ends below 15% training error; "
       "without it at least two of three end above 20%. The ranges overlap, and the run without "
       "warm-up (12 epochs on a GPU) trains the 20-layer networks of both kinds to a lower training "
       "error than the main run (10 epochs on a CPU) in every seed, so only the direction of the "
       "warm-up effect is measured, not its size.",
       uses=("degradation", "degradation_nowarmup"))
def _warm_helps():
    w = _stat("degradation", "residual", 56)
    nw = _stat("degradation_nowarmup", "residual", 56)
    n_bad = sum(v > 20 for v in nw.values)
    twenty = {k: (_stat("degradation", k, 20), _stat("degradation_nowarmup", k, 20)) for k in ("plain", "residual")}
    lower = all(main.above(gpu) for main, gpu in twenty.values())
    ratio = {k: main.mean / gpu.mean for k, (main, gpu) in twenty.items()}
    return Outcome(w.max < 15 and n_bad >= 2 and w.overlaps(nw) and lower,
                   f"training error % of residual-56: with warm-up {w}; without {nw} ({_spread(w, nw)}); "
                   f"20 layers, main run vs run without warm-up: "
                   + "; ".join(f"{k} {main} vs {gpu} ({ratio[k]:.1f}x)" for k, (main, gpu) in twenty.items()),
                   values={"with": w.mean, "without": nw.mean, "n_bad": n_bad, "with_max": w.max,
                           "without_min": nw.min, "ratio_plain20": ratio["plain"],
                           "ratio_residual20": ratio["residual"]})


# --- gradients at initialisation (cached: results/gradient_at_init.json) ----------------------

@claim("06", "gradient-at-init",
       "At initialisation, with batch norm, the gradient at the first layer of the plain network "
       "grows more than a hundredfold from 20 to 56 layers (every 56-layer seed above a hundred "
       "times every 20-layer seed, and the ratio of the means above a hundred too), and that of "
       "the residual network less than fivefold (ratio of the means).", uses=("gradient_at_init",))
def _grad():
    g = results("gradient_at_init")["norms"]
    s = {k: Stat(v, ".3g") for k, v in g.items()}
    plain_growth = s["plain-56"].min / s["plain-20"].max
    plain_growth_mean = s["plain-56"].mean / s["plain-20"].mean
    res_growth = s["residual-56"].mean / s["residual-20"].mean
    ev = "; ".join(f"{k}: {st}" for k, st in s.items())
    return Outcome(plain_growth > 100 and plain_growth_mean > 100 and res_growth < 5,
                   f"first-layer gradient norm, {ev}; plain grows {plain_growth_mean:.0f}x (means), "
                   f"at least {plain_growth:.0f}x (any two runs), residual {res_growth:.1f}x (means)",
                   values={"plain_growth": plain_growth, "plain_growth_mean": plain_growth_mean,
                           "res_growth": res_growth, "table": g})


# --- live: the global-average-pooling head -------------------------------------------------

@claim("06", "gap-head-ratio",
       "On a 7x7 feature map a flatten-and-linear head holds close to 49 times the parameters of "
       "the pooled head (between 45 and 49), on the CIFAR ResNet and on ResNet-50.")
def _gap():
    from torch import nn

    from convnets.utils import count_parameters

    ratios = {}
    for name, c, classes in (("resnet_cifar(depth=20)", 64, 10), ("ResNet-50", 2048, 1000)):
        with torch.device("meta"):  # shapes only: ResNet-50's flattened head has 100M weights
            ratios[name] = (count_parameters(nn.Linear(c * 49, classes)) / count_parameters(nn.Linear(c, classes)))
    return Outcome(all(45 < r <= 49 for r in ratios.values()),
                   ", ".join(f"{k}: {v:.1f}x" for k, v in ratios.items()), values=ratios)


# --- Paper vs here ---------------------------------------------------------------------------

@claim("06", "paper-degradation",
       "Degradation: a deeper plain network reaches a higher training error (20 vs 56 layers)",
       uses=("degradation",), paper="Fig. 1 and Fig. 6 (He et al. 2016): plain-56 above plain-20, "
       "CIFAR-10", expect="reproduced")
def _p_deg():
    p20, p56 = _stat("degradation", "plain", 20), _stat("degradation", "plain", 56)
    every = p56.above(p20)
    return Outcome(every, f"MNIST 5k training error %: plain-56 {p56}, plain-20 {p20}",
                   verdict=verdict_from(every, p56.mean > p20.mean))


@claim("06", "paper-residual-deeper-better",
       "Residual networks remove the degradation: the deeper one is better",
       uses=("degradation",), paper="Table 6 (He et al. 2016), CIFAR-10 test error: ResNet-20 8.75 %, "
       "ResNet-56 6.97 %", expect="partly")
def _p_res():
    r20, r56 = _stat("degradation", "residual", 20), _stat("degradation", "residual", 56)
    p56 = _stat("degradation", "plain", 56)
    t20, t56 = (_stat("degradation", "residual", 20, "test_error"),
                _stat("degradation", "residual", 56, "test_error"))
    full = t20.above(t56)  # every residual-56 run better than every residual-20 run
    # deeper residual less affected than deeper plain: lower than plain-56 seed by seed
    partial = all(a < b for a, b in zip(r56.values, p56.values))
    return Outcome(full or partial, f"MNIST 5k test error %: residual-56 {t56}, residual-20 {t20}; "
                   f"training error % residual-56 {r56} vs plain-56 {p56}",
                   verdict=verdict_from(full, partial))


@claim("06", "paper-1202",
       "Very deep: ResNet-1202 trains to a training error as low as ResNet-110's but tests worse "
       "(overfitting)", uses=("degradation",),
       paper="Table 6 (He et al. 2016): ResNet-110 6.43 %, ResNet-1202 7.93 % test error, CIFAR-10",
       expect="not reproduced here")
def _p_1202():
    s = _summary("degradation")
    deep = max(d for _, d in s)
    shallow = 20
    tr_d, tr_s = _stat("degradation", "residual", deep), _stat("degradation", "residual", shallow)
    te_d, te_s = (_stat("degradation", "residual", deep, "test_error"),
                  _stat("degradation", "residual", shallow, "test_error"))
    # the paper's pattern: the deeper net fits the training set at least as well, and tests worse
    full = tr_d.mean <= tr_s.mean and te_d.above(te_s)
    ev = (f"deepest here {deep} layers: residual-{deep} training error {tr_d}, test {te_d}; "
          f"residual-{shallow} training {tr_s}, test {te_s}")
    return Outcome(True, ev, verdict=verdict_from(full, False))


@functools.cache
def cifar_param_counts() -> dict[int, int]:
    """Parameters of ``resnet_cifar(depth=d, in_channels=3)`` (option A) for the depths of
    :data:`TABLE6`, counted once per process (built on the CPU: for these small networks that is
    faster than the meta device)."""
    from convnets.models import resnet_cifar
    from convnets.utils import count_parameters

    return {d: count_parameters(resnet_cifar(depth=d, in_channels=3, num_classes=10)) for d in TABLE6}


@claim("06", "paper-cifar-params",
       "Parameters of the CIFAR ResNets (option A shortcuts), 20 to 1202 layers",
       paper="Table 6 (He et al. 2016): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M", expect="reproduced")
def _p_params():
    counts = cifar_param_counts()
    ok = all(abs(counts[d] / 1e6 - TABLE6[d][0]) <= 0.005 * 10 ** (TABLE6[d][0] >= 1.0) for d in TABLE6)
    return Outcome(ok, ", ".join(f"{counts[d] / 1e6:.3f}M" for d in TABLE6),
                   values={f"d{d}": counts[d] for d in TABLE6}, verdict=verdict_from(ok, False))


@functools.cache
def imagenet_costs() -> dict[str, dict[str, float]]:
    """For ResNet-18 to 152 at 224x224 (built on the meta device, so nothing is computed):
    ``{name: {"params", "params_torchvision", "gmacs", "gmacs_stride_1x1"}}``; ``gmacs`` with the
    stride on the 3x3 convolution (torchvision's "v1.5"), ``gmacs_stride_1x1`` with it on the first
    1x1 as in the paper (the same for the basic-block ResNet-18 and 34). Computed once per process."""
    import torchvision

    from convnets import models
    from convnets.flops import count_macs
    from convnets.utils import count_parameters

    out = {}
    for name in IMAGENET:
        bottleneck = name not in ("resnet18", "resnet34")
        with torch.device("meta"):
            ours, tv = getattr(models, name)(), getattr(torchvision.models, name)()
            v1 = getattr(models, name)(stride_in_1x1=True) if bottleneck else ours
        g = count_macs(ours, (3, 224, 224)) / 1e9
        out[name] = {"params": count_parameters(ours), "params_torchvision": count_parameters(tv),
                     "gmacs": g, "gmacs_stride_1x1": count_macs(v1, (3, 224, 224)) / 1e9 if bottleneck else g}
    return out


@claim("06", "paper-imagenet-cost",
       "ResNet-18 to 152: torchvision's parameter counts, and Table 1's multiply-adds with the "
       "stride on the first 1x1", paper="Table 1 (He et al. 2016): 1.8, 3.6, 3.8, 7.6, 11.3 G; "
       "torchvision: 11,689,512 ... 60,192,808 parameters", expect="reproduced")
def _p_imagenet():
    rows, ok = [], True
    for name, c in imagenet_costs().items():
        ref_params, ref_gmacs = IMAGENET[name]
        g = c["gmacs_stride_1x1"]
        ok &= c["params"] == c["params_torchvision"] == ref_params and abs(g - ref_gmacs) < 0.1
        rows.append(f"{name} {c['params']:,} params (torchvision {c['params_torchvision']:,}), {g:.2f} GMACs")
    return Outcome(ok, "; ".join(rows), verdict=verdict_from(ok, False))


@claim("06", "densenet-params",
       "DenseNet-121: the library's model has torchvision's parameters, module for module",
       paper="torchvision densenet121: 7,978,856 parameters (torchvision's model documentation)", expect="reproduced")
def _p_densenet():
    import torchvision

    from convnets.models import densenet121
    from convnets.utils import count_parameters

    with torch.device("meta"):
        ours, tv = densenet121(), torchvision.models.densenet121()
    p, ptv = count_parameters(ours), count_parameters(tv)
    same_names = list(ours.state_dict()) == list(tv.state_dict())
    ok = p == ptv == 7_978_856 and same_names
    return Outcome(ok, f"{p:,} parameters (torchvision {ptv:,}); state_dict keys identical: {same_names}",
                   values={"params": p}, verdict=verdict_from(ok, p == ptv))
