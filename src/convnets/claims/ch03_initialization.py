"""Claims of the chapter "Weight initialisation" (``book/03-initialization.md``).

Most rest on ``results/initialization.json`` (``python -m convnets.experiments initialization``:
a 20-layer plain CNN trained under each scheme, from seeds 0, 1, 2; see its ``recomputed_as``
for where each seed was computed); the variance-per-layer
factors, the symmetry runs and the torchvision check are cheap live computations, done by the
helpers below, which the chapter also calls to show the same numbers.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from . import Outcome, Stat, claim, results, verdict_from

#: The labels of the schemes in ``results/initialization.json``.
HE = ("He, fan_in", "He, fan_out")
STUCK = ("N(0, 0.01²)", "PyTorch default", "Xavier")  # the schemes whose signal vanishes
SLIDE = "slide: (2/√n)·N(0,1)"
LN10 = math.log(10)
SEEDS = (0, 1, 2)
#: Weight layers of the deep MLP and CNN on which the chapter checks the derivation (30): the last
#: one is the classifier, so layers 1..MLP_DEPTH-1 are hidden and each of layers 2..MLP_DEPTH-1 is
#: fed by a hidden layer of the same width (see :func:`factor_span`).
MLP_DEPTH = 30


def factor_span(depth: int = MLP_DEPTH) -> tuple[int, int, int]:
    """``(first, last, count)`` of the layers ``l`` whose factor Var[y_l] / Var[y_(l-1)]
    :func:`variance_factor` averages in a plain net of ``depth`` weight layers: every hidden layer
    fed by a hidden layer, ``2..depth-1`` (the classifier, layer ``depth``, is left out)."""
    return 2, depth - 1, depth - 2


def _final(r: dict, label: str, key: str = "val_acc") -> Stat:
    return Stat([h[key][-1] if h[key][-1] is not None else float("inf") for h in r["histories"][label]])


@lru_cache(maxsize=None)
def variance_factor(scheme: str, seed: int, depth: int = MLP_DEPTH, width: int = 256, n: int = 256) -> float:
    """Per-layer factor of the variance of the outputs in a plain ReLU MLP (``depth`` layers of
    ``width``) initialised with ``scheme`` from ``seed``: the geometric mean of
    Var[y_l] / Var[y_(l-1)] over the layers of :func:`factor_span` (2..depth-1, each fed by a
    hidden layer of ``width`` units), measured by :func:`convnets.init.probe` on ``n`` MNIST-5k
    training images."""
    from ..data import mnist5k
    from ..init import init_weights, plain_mlp, probe

    d = mnist5k()
    X, y = d.X_train[:n], d.y_train[:n]
    net = init_weights(plain_mlp(depth=depth, width=width), scheme,
                       generator=torch.Generator().manual_seed(seed))
    first, last, count = factor_span(depth)
    var = [s ** 2 for s in probe(net, X, y).act_std][first - 2:last]  # Var[y_(first-1)] .. Var[y_last]
    logs = [math.log(b / a) for a, b in zip(var[:-1], var[1:])]
    assert len(logs) == count
    return math.exp(sum(logs) / len(logs))


def factors(scheme: str) -> Stat:
    """:func:`variance_factor` over the seeds 0, 1, 2."""
    return Stat([variance_factor(scheme, s) for s in SEEDS])


@lru_cache(maxsize=None)
def symmetry_run(scheme: str, seed: int, epochs: int = 3) -> tuple[float, float, float]:
    """Train the MLP 784-32-32-10 (biases) on MNIST 5k, SGD lr 0.05 momentum 0.9, batch 64, from
    ``scheme`` (``"constant"`` 0.01 or ``"he"``) and ``seed``; return the largest hidden-unit
    spread of the two hidden layers before and after training, and the final test accuracy."""
    from ..data import loaders, mnist5k
    from ..init import hidden_unit_spread, init_weights, plain_mlp
    from ..train import fit, seed_everything

    train_loader, test_loader = loaders(mnist5k(), batch_size=64, seed=seed)
    seed_everything(seed)
    net = plain_mlp(depth=3, width=32, bias=True)
    init_weights(net, scheme, value=0.01)
    before = max(hidden_unit_spread(net[i]) for i in (1, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    h = fit(net, train_loader, test_loader, epochs=epochs, optimizer=opt, verbose=False, device="cpu")
    after = max(hidden_unit_spread(net[i]) for i in (1, 3))
    return before, after, float(h.val_acc[-1])


@lru_cache(maxsize=None)
def torchvision_fans() -> list[dict]:
    """For every convolution of torchvision's ``resnet18`` (built, no weights) whose fan_in and
    fan_out differ: its name, fans, the std of its weights, and that std over sqrt(2/fan_out)
    and over sqrt(2/fan_in)."""
    import torchvision

    from ..init import fans

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    rows = []
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            fi, fo = fans(m.weight)
            if fi != fo:
                s = m.weight.std().item()
                rows.append({"name": name, "shape": tuple(m.weight.shape), "fan_in": fi, "fan_out": fo,
                             "std": s, "r_out": s / math.sqrt(2 / fo), "r_in": s / math.sqrt(2 / fi)})
    return rows


# ---------------------------------------------------------------- the derivation, measured

_PREDICTED = {"he": 1.0, "slide": 2.0, "xavier": 0.5, "default": 1 / 6}


def _factor_claim(scheme: str) -> Outcome:
    f, want = factors(scheme), _PREDICTED[scheme]
    full = all(abs(v / want - 1) < 0.1 for v in f.values)
    part = all(abs(v / want - 1) < 0.3 for v in f.values)
    return Outcome(full, f"factor per layer {f} (predicted {want:.3g})", values={"mean": f.mean, "std": f.std},
                   verdict=verdict_from(full, part))


@claim("03", "factor-he", "He's std √(2/n) keeps the variance of the outputs through a deep ReLU "
       "network: a factor 1 per layer.",
       paper="½·n·Var[w] = 1 in every layer, i.e. std √(2/n): a factor 1 per layer (He et al. 2015, Sec. 2.2)",
       expect="reproduced")
def _():
    return _factor_claim("he")


@claim("03", "factor-slide", "The slide's (2/√n)·N(0,1) has variance 4/n and doubles the variance "
       "at every layer.",
       paper="the slide's (2/√n)·N(0,1) has variance 4/n, twice He et al.'s 2/n (Sec. 2.2): by their "
             "condition a factor ½·n·4/n = 2 per layer",
       expect="reproduced")
def _():
    return _factor_claim("slide")


@claim("03", "factor-xavier", "Xavier's 2/(n + m), derived for symmetric activations, halves the "
       "variance at every ReLU layer when fan-in equals fan-out.",
       paper="Var[w] = 2/(n + m) (Glorot & Bengio 2010, derived for symmetric activations); "
             "with a ReLU and n = m, He et al.'s condition gives a factor ½·n·(1/n) = 1/2 per layer",
       expect="reproduced")
def _():
    return _factor_claim("xavier")


@claim("03", "factor-default", "PyTorch's default U(-1/√n, 1/√n) has variance 1/(3n): the variance "
       "shrinks by a factor 6 at every ReLU layer.",
       paper="PyTorch's default for Linear and Conv2d, kaiming_uniform_(a=√5), is U(-1/√n, 1/√n), "
             "variance 1/(3n) (PyTorch source): a factor ½·n·1/(3n) = 1/6 per layer",
       expect="reproduced")
def _():
    return _factor_claim("default")


@claim("03", "torchvision-fan-out", "torchvision's ResNet draws its convolutions with "
       "kaiming_normal(mode='fan_out'): the std matches √(2/fan_out), not √(2/fan_in), in every "
       "layer where the two differ.",
       paper="kaiming_normal_(mode='fan_out', nonlinearity='relu') for every convolution "
             "(torchvision's ResNet source)",
       expect="reproduced")
def _():
    rows = torchvision_fans()
    out = [r["r_out"] for r in rows]
    inn = [r["r_in"] for r in rows]
    full = bool(rows) and all(abs(v - 1) < 0.02 for v in out) and all(abs(v - 1) > 0.2 for v in inn)
    ev = (f"{len(rows)} convolutions with fan_in ≠ fan_out: std / √(2/fan_out) "
          f"{min(out):.3f}–{max(out):.3f}, std / √(2/fan_in) {min(inn):.3f}–{max(inn):.3f}")
    return Outcome(full, ev, values={"n": len(rows)}, verdict=verdict_from(full, False))


# ---------------------------------------------------------------- symmetry (live)

@claim("03", "symmetry", "With every weight equal to 0.01 the hidden units stay copies of one "
       "another after three epochs, and the net ends far below the randomly initialised one.")
def _():
    const = [symmetry_run("constant", s) for s in SEEDS]
    he = [symmetry_run("he", s) for s in SEEDS]
    spread = max(max(c[0], c[1]) for c in const)
    ca, ha = Stat([c[2] for c in const]), Stat([h[2] for h in he])
    holds = spread < 1e-4 and ha.above(ca, 0.1)
    return Outcome(holds, f"constant: largest unit spread {spread:.2g}, test acc {ca}; He: test acc {ha}",
                   values={"spread": spread, "const_acc": ca.mean, "const_std": ca.std,
                           "he_acc": ha.mean, "he_std": ha.std})


# ---------------------------------------------------------------- the trained 20-layer CNN

@claim("03", "init-profile", "At initialisation the signal reaching the 19th convolution of the "
       "20-layer CNN keeps its scale within a factor 10 with He's scheme, grows more than 10 times "
       "with the slide's, and shrinks more than 100 times with a fixed std of 0.01, PyTorch's "
       "default and Xavier's.", uses=("initialization",))
def _():
    r = results("initialization")
    ratio = {k: Stat([s[-2] / s[0] for s in r["init_act_std"][k]], ".3g") for k in r["schemes"]}
    he_ok = all(0.1 < v < 10 for k in HE for v in ratio[k].values)
    slide_ok = ratio[SLIDE].min > 10
    vanish_ok = all(ratio[k].max < 1e-2 for k in STUCK)
    ev = "; ".join(f"{k}: {ratio[k]}" for k in r["schemes"])
    return Outcome(he_ok and slide_ok and vanish_ok, "act std, conv 19 / conv 1: " + ev,
                   values={"he": ratio[HE[0]].mean, "slide": ratio[SLIDE].mean,
                           "slide_min": ratio[SLIDE].min, "slide_max": ratio[SLIDE].max})


@claim("03", "he-trains", "He's fan_in scheme trains the 20-layer plain CNN in every seed (test "
       "accuracy above 0.8).", uses=("initialization",))
def _():
    r = results("initialization")
    a = _final(r, HE[0])
    return Outcome(a.min > 0.8, f"test accuracy after {r['config']['epochs']} epochs, fan_in: {a}",
                   values={"fan_in": a.mean, "fan_in_std": a.std, "min": a.min, "max": a.max, "runs": a.n})


def _trained_stuck(acc: Stat) -> tuple[list[float], list[float]]:
    return [v for v in acc.values if v > 0.8], [v for v in acc.values if v < 0.15]


def _collapse_epoch(h: dict, tol: float = 0.01) -> int | None:
    """The first epoch from which the training loss of history ``h`` stays within ``tol`` of
    ln 10 to the end (``None`` if the last epoch's loss is not there)."""
    epoch = None
    for e, v in zip(reversed(h["epoch"]), reversed(h["train_loss"])):
        if v is None or abs(v - LN10) >= tol:
            break
        epoch = e
    return epoch


@claim("03", "he-fan-out", "He's fan_out scheme does not train the 20-layer plain CNN reliably at "
       "this learning rate: its first convolution starts several times smaller than with fan_in "
       "(fan-out 9·16 against fan-in 9·1), and some seeds train while others end at chance after a "
       "collapse: the run first climbs above 0.3 test accuracy, then its training loss returns to "
       "ln 10 and stays there for at least the last 3 epochs.", uses=("initialization",))
def _():
    r = results("initialization")
    b = _final(r, HE[1])
    trained, stuck = _trained_stuck(b)
    first = Stat([o[0] / i[0] for o, i in zip(r["init_act_std"][HE[1]], r["init_act_std"][HE[0]])], ".3f")
    hs = [h for h in r["histories"][HE[1]] if h["val_acc"][-1] < 0.15]
    peaks = [max(h["val_acc"]) for h in hs]
    peak_epochs = [h["epoch"][h["val_acc"].index(max(h["val_acc"]))] for h in hs]
    collapse = [_collapse_epoch(h) for h in hs]
    n_epochs = r["config"]["epochs"]
    collapsed = bool(hs) and all(p > 0.3 for p in peaks) and all(
        c is not None and c <= n_epochs - 2 and c > pe for c, pe in zip(collapse, peak_epochs))
    holds = (len(trained) >= 1 and len(stuck) >= 1 and len(trained) + len(stuck) == b.n
             and first.max < 0.5 and collapsed)
    return Outcome(holds, f"fan_out test accuracy {b}: {len(trained)} run(s) above 0.8, {len(stuck)} "
                   f"at chance (peak test accuracy {peaks} at epoch {peak_epochs}, training loss at "
                   f"ln 10 from epoch {collapse} on); std of the first convolution's output, "
                   f"fan_out / fan_in: {first}",
                   values={"trained": len(trained), "stuck": len(stuck), "runs": b.n,
                           "first_ratio": first.mean,
                           "peak": max(peaks) if peaks else float("nan"),
                           "peak_epoch": peak_epochs[0] if peak_epochs else -1,
                           "collapse_epoch": (collapse[0] if collapse and collapse[0] is not None
                                              else -1)})


@claim("03", "he-modes", "Where both He modes train, their test accuracies are within the spread of "
       "the seeds (the ranges overlap): the experiment ranks them only by fan_out's runs that end "
       "at chance.", uses=("initialization",))
def _():
    r = results("initialization")
    a, b = _final(r, HE[0]), _final(r, HE[1])
    trained, _ = _trained_stuck(b)
    t = Stat(trained) if trained else None
    holds = a.n >= 3 and t is not None and a.overlaps(t)
    return Outcome(holds, f"test accuracy: fan_in {a}; fan_out, runs that train: {t}; ranges "
                   f"{'overlap' if t is not None and a.overlaps(t) else 'do not overlap'}",
                   values={"diff": a.mean - t.mean if t else float("nan"),
                           "trained_mean": t.mean if t else float("nan"),
                           "trained_min": t.min if t else float("nan"),
                           "trained_max": t.max if t else float("nan")})


@claim("03", "others-stuck", "With a fixed std of 0.01, PyTorch's default or Xavier's scheme the "
       "20-layer plain CNN stays at chance in every run: its training loss ends at ln 10, the loss "
       "of a uniform guess.", uses=("initialization",))
def _():
    r = results("initialization")
    acc = {k: _final(r, k) for k in STUCK}
    loss = {k: _final(r, k, "train_loss") for k in STUCK}
    holds = all(acc[k].max < 0.15 for k in STUCK) and all(abs(v - LN10) < 0.01 for k in STUCK
                                                            for v in loss[k].values)
    ev = "; ".join(f"{k}: acc {acc[k]}, final loss {loss[k].min:.4f}–{loss[k].max:.4f}" for k in STUCK)
    return Outcome(holds, ev, values={"acc_max": max(acc[k].max for k in STUCK),
                                      "runs": min(acc[k].n for k in STUCK)})


@claim("03", "slide-below-he", "The slide's scheme stays at chance in some seeds and never comes "
       "near He's fan_in: its best run ends, and peaks, more than 0.3 below fan_in's worst.",
       uses=("initialization",))
def _():
    r = results("initialization")
    sl, he = _final(r, SLIDE), _final(r, HE[0])
    chance = [v for v in sl.values if v < 0.15]
    best = max(r["histories"][SLIDE], key=lambda h: h["val_acc"][-1])
    peak = max(best["val_acc"])
    peak_epoch = best["epoch"][best["val_acc"].index(peak)]
    holds = len(chance) >= 1 and he.min - sl.max > 0.3 and he.min - peak > 0.3
    return Outcome(holds, f"slide {sl} ({len(chance)} run(s) at chance; best run peaks at {peak:.3f}, "
                   f"epoch {peak_epoch}); He fan_in {he}",
                   values={"chance": len(chance), "runs": sl.n, "max": sl.max, "gap": he.min - sl.max,
                           "peak": peak, "peak_epoch": peak_epoch})


@claim("03", "slide-first-epoch", "The slide's scheme fails the other way: its first epoch's mean "
       "training loss is above ln 10 in every run (huge first updates).", uses=("initialization",))
def _():
    r = results("initialization")
    first = Stat([h["train_loss"][0] if h["train_loss"][0] is not None else float("inf")
                  for h in r["histories"][SLIDE]])
    return Outcome(first.min > LN10 + 0.1, f"first-epoch loss {first} (ln 10 = {LN10:.3f})",
                   values={"first": first.mean, "first_min": first.min, "first_max": first.max})


@claim("03", "he-vs-xavier-deep", "A deep plain ReLU network trains with He's initialisation and "
       "stalls with Xavier's.", uses=("initialization",),
       paper="a 30-layer plain ReLU model converges with He's init and completely stalls with "
             "Xavier's (He et al. 2015, Fig. 3)", expect="reproduced")
def _():
    r = results("initialization")
    he, xa = _final(r, HE[0]), _final(r, "Xavier")
    full = he.min > 0.8 and xa.max < 0.15  # every He run trains, every Xavier run stays at chance
    part = he.mean > xa.mean + 0.1
    return Outcome(full, f"20-layer plain CNN, test accuracy after {r['config']['epochs']} epochs: "
                   f"He (fan_in) {he}, Xavier {xa}", verdict=verdict_from(full, part))
