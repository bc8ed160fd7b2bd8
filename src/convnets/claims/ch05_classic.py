"""Claims of the chapter "Classic architectures" (``book/05-classic-architectures.md``).

Parameter and multiply-add counts are computed live (on PyTorch's ``meta`` device: shapes only,
milliseconds); training results rest on the cached experiments ``classic_mnist``,
``classic_relu_tanh`` and ``classic_training``.
"""
from __future__ import annotations

import statistics
from functools import lru_cache

import torch

from . import Outcome, Stat, claim, results, verdict_from

#: torchvision's ImageNet weights, acc@1 on ILSVRC-2012 val with one 224x224 centre crop
#: (REFERENCE.md): the one protocol that covers every family of the chapter.
TORCHVISION_TOP1 = {"alexnet": 56.5, "vgg16": 71.6, "googlenet": 69.8, "resnet18": 69.8, "resnet50": 76.1}


def _meta(fn, *args, **kwargs):
    with torch.device("meta"):
        return fn(*args, **kwargs)


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


@lru_cache(maxsize=None)
def counts() -> dict[str, float]:
    """Parameters and MACs (224x224) of the ImageNet networks, counted from the code."""
    import torchvision

    from ..flops import count_macs
    from ..models import alexnet, googlenet, lenet5, vgg

    out: dict[str, float] = {"lenet5": _params(lenet5())}
    for c in ("A", "B", "C", "D", "E"):
        out[f"vgg_{c}"] = _params(_meta(vgg, c, init_weights=False))
    alex = _meta(alexnet)
    out["alexnet"] = _params(alex)
    conv = [m for m in alex.modules() if isinstance(m, torch.nn.Conv2d)]
    out["alexnet_conv_params"] = sum(_params(m) for m in conv)
    from ..flops import macs_by_module
    parts = macs_by_module(alex, (3, 224, 224), depth=2)
    out["alexnet_macs"] = parts[""]
    out["alexnet_conv_macs"] = sum(v for k, v in parts.items() if k.startswith("features."))
    g = _meta(googlenet, aux_logits=False)
    out["googlenet"] = _params(g)
    out["googlenet_aux"] = _params(_meta(googlenet, aux_logits=True))
    out["googlenet_macs"] = count_macs(g, (3, 224, 224))
    for name in TORCHVISION_TOP1:
        tv = _meta(getattr(torchvision.models, name), weights=None,
                   **({"aux_logits": False, "init_weights": False} if name == "googlenet" else {}))
        out[f"tv_{name}_params"] = _params(tv)
        out[f"tv_{name}_macs"] = count_macs(tv, (3, 224, 224))
    return out


# ------------------------------------------------------------------------------------------------
# counts against the papers

@claim("05", "lenet-params", "LeNet-5 has about 60,000 trainable parameters.",
       paper="about 60,000 (LeCun et al. 1998, Sec. II.B)", expect="reproduced")
def _():
    n = counts()["lenet5"]
    rel = abs(n - 60_000) / 60_000
    return Outcome(True, f"{n:,} in the common variant (full C3, plain pooling): {100 * rel:.1f} % off",
                   values={"n": f"{n:,}"}, verdict=verdict_from(rel < 0.05, rel < 0.2))


@claim("05", "alexnet-params", "AlexNet has about 60 million parameters.",
       paper="60 million (Krizhevsky et al. 2012)", expect="reproduced")
def _():
    n = counts()["alexnet"]
    rel = abs(n - 60e6) / 60e6
    return Outcome(True, f"{n:,} (torchvision's one-GPU variant; the two-GPU net: 60,965,224)",
                   values={"n": f"{n:,}"}, verdict=verdict_from(rel < 0.05, rel < 0.2))


@claim("05", "vgg-params", "VGG's columns A-E have 133, 133, 134, 138 and 144 million parameters.",
       paper="Table 2: 133 / 133 / 134 / 138 / 144 M (Simonyan and Zisserman 2015)", expect="reproduced")
def _():
    c = counts()
    ours = [round(c[f"vgg_{k}"] / 1e6) for k in "ABCDE"]
    ok = ours == [133, 133, 134, 138, 144]
    return Outcome(ok, " / ".join(f"{c[f'vgg_{k}']:,}" for k in "ABCDE") + f" (rounded: {ours})",
                   verdict=verdict_from(ok, False))


@claim("05", "googlenet-fewer", "GoogLeNet uses 12 times fewer parameters than AlexNet.",
       paper="12x fewer than AlexNet (Szegedy et al. 2015, Sec. 1)", expect="partly")
def _():
    c = counts()
    ratio = c["alexnet"] / c["googlenet"]
    ratio2 = 60_965_224 / c["googlenet"]
    return Outcome(True, f"AlexNet {c['alexnet']:,} / GoogLeNet {c['googlenet']:,} = {ratio:.1f}x "
                   f"(two-GPU AlexNet: {ratio2:.1f}x; with the auxiliary heads {c['alexnet'] / c['googlenet_aux']:.1f}x)",
                   values={"ratio": f"{ratio:.1f}", "params": f"{c['googlenet']:,}"},
                   verdict=verdict_from(abs(ratio - 12) < 1.0, ratio > 4))


@claim("05", "googlenet-macs", "GoogLeNet keeps to a budget of 1.5 billion multiply-adds per image.",
       paper="1.5 G multiply-adds at inference (Szegedy et al. 2015, Sec. 1)", expect="reproduced")
def _():
    g = counts()["googlenet_macs"] / 1e9
    return Outcome(True, f"{g:.3f} GMACs at 224x224", values={"gmacs": f"{g:.2f}"},
                   verdict=verdict_from(abs(g - 1.5) < 0.1, abs(g - 1.5) < 0.5))


@claim("05", "alexnet-fc-heavy", "AlexNet's convolutions hold under 10 % of its parameters but do over "
       "90 % of its multiply-adds.")
def _():
    c = counts()
    p = c["alexnet_conv_params"] / c["alexnet"]
    m = c["alexnet_conv_macs"] / c["alexnet_macs"]
    return Outcome(p < 0.10 and m > 0.90, f"convolutions: {100 * p:.1f} % of parameters, {100 * m:.1f} % of MACs",
                   values={"param_share": f"{100 * p:.0f}", "mac_share": f"{100 * m:.0f}"})


@claim("05", "evolution-compute", "On one protocol (torchvision's weights, one crop), error falls from AlexNet "
       "to VGG-16 as compute grows, then GoogLeNet and ResNet-50 reach VGG-16's error or better with a "
       "fraction of its compute; parameters are no guide (VGG-16 has the most and is not the best).")
def _():
    c = counts()
    err = {k: 100 - v for k, v in TORCHVISION_TOP1.items()}
    vgg_m = c["tv_vgg16_macs"]
    ok = (err["vgg16"] < err["alexnet"] and vgg_m > 10 * c["tv_alexnet_macs"]
          and err["resnet50"] < err["vgg16"] and c["tv_resnet50_macs"] < vgg_m / 3
          and err["googlenet"] - err["vgg16"] < 2.5 and c["tv_googlenet_macs"] < vgg_m / 5
          and max(TORCHVISION_TOP1, key=lambda k: c[f"tv_{k}_params"]) == "vgg16")
    ev = "; ".join(f"{k} {err[k]:.1f} % at {c[f'tv_{k}_macs'] / 1e9:.2f} GMACs, {c[f'tv_{k}_params'] / 1e6:.1f} M"
                   for k in TORCHVISION_TOP1)
    return Outcome(ok, ev, values={"vgg_over_r50": f"{vgg_m / c['tv_resnet50_macs']:.1f}",
                                   "vgg_over_g": f"{vgg_m / c['tv_googlenet_macs']:.0f}"})


# ------------------------------------------------------------------------------------------------
# ReLU against tanh (classic_relu_tanh)

def _mean_curves():
    r = results("classic_relu_tanh")
    return {a: [statistics.fmean(col) for col in zip(*r["train_error"][a])] for a in ("relu", "tanh")}, r


@claim("05", "relu-tanh-cross", "The mean training-error curves of ReLU and tanh cross: which one is faster "
       "depends on the threshold.", uses=("classic_relu_tanh",))
def _():
    m, _ = _mean_curves()
    relu_ahead = [i + 1 for i, (a, b) in enumerate(zip(m["relu"], m["tanh"])) if a < b]
    tanh_ahead = [i + 1 for i, (a, b) in enumerate(zip(m["relu"], m["tanh"])) if b < a]
    return Outcome(bool(relu_ahead and tanh_ahead),
                   f"ReLU's mean error lower at epochs {relu_ahead}, tanh's at epochs {tanh_ahead}")


@claim("05", "relu-tanh-six", "ReLU reaches a training error six times faster than tanh.",
       uses=("classic_relu_tanh",), paper="6x fewer epochs to 25 % training error, CIFAR-10 (Krizhevsky et al. 2012, Fig. 1)",
       expect="not reproduced here")
def _():
    m, r = _mean_curves()
    ratios = {}
    for t in r["thresholds"]:
        e = {a: next((i + 1 for i, v in enumerate(m[a]) if v <= t), None) for a in m}
        if None not in e.values():
            ratios[t] = e["tanh"] / e["relu"]
    if not ratios:
        return Outcome(False, "no threshold reached by both mean curves", verdict="not reproduced here")
    best = max(ratios.values())
    ev = ", ".join(f"{100 * t:g} %: tanh/ReLU = {v:.2f}" for t, v in ratios.items())
    return Outcome(True, f"epochs of the mean curves to reach each error, MNIST 5k, 3 seeds: {ev}",
                   verdict=verdict_from(best >= 4, best >= 1.5))
