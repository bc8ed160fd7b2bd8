"""Claims of the chapter "What convolutional networks learn" (``book/08-interpretation.md``), on
the cached results of :mod:`convnets.experiments.interpretation` (three seeds of LeNet-5 and three of
ResNet-8, on MNIST 5k)."""
from __future__ import annotations

from functools import lru_cache

from . import Outcome, Stat, claim, results, verdict_from

NETS = {"lenet": "LeNet-5", "resnet": "ResNet-8"}
R = "interpretation"


def _region(r: dict, kind: str, region: str, what: str = "density") -> Stat:
    """One number per seed from a list of per-seed region summaries."""
    return Stat([s[region][what] for s in r], ".2f")


@claim("08", "saliency-band", "Per unit area, the saliency is densest in the band of background "
       "within 2 pixels of the strokes: for every seed of both networks the band's density is above "
       "the ink's and above the far background's.", uses=(R,))
def _():
    res = results(R)
    ok, parts, vals = True, [], {}
    for kind, name in NETS.items():
        r = res["saliency"][kind]["band2"]
        ink, band, far = (_region(r, kind, g) for g in ("ink", "band", "far"))
        ok &= all(b > max(i, f) for b, i, f in zip(band.values, ink.values, far.values))
        parts.append(f"{name}: density ink {ink}, band {band}, far {far}")
        for g, st in (("ink", ink), ("band", band), ("far", far)):
            vals[f"{kind}_{g}"] = st.mean
            vals[f"{kind}_{g}_sd"] = st.std
            vals[f"{kind}_{g}_mass"] = 100 * _region(r, kind, g, "mass").mean
            vals[f"{g}_area"] = 100 * _region(r, kind, g, "area").mean
        vals[f"{kind}_band1"] = _region(res["saliency"][kind]["band1"], kind, "band").mean
    return Outcome(ok, "; ".join(parts), values=vals)


@claim("08", "saliency-spread", "The saliency is no segmentation of the digit: the ink holds "
       "about its share of the area (density between 0.7 and 1.3) and the far background, more than "
       "half of the pixels, still holds over 40 % of the mass.", uses=(R,))
def _():
    res = results(R)
    ok, parts = True, []
    for kind, name in NETS.items():
        r = res["saliency"][kind]["band2"]
        ink = _region(r, kind, "ink")
        far_mass = _region(r, kind, "far", "mass")
        far_area = _region(r, kind, "far", "area")
        ok &= 0.7 < ink.min and ink.max < 1.3 and far_mass.min > 0.4 and far_area.min > 0.5
        parts.append(f"{name}: ink density {ink}, far mass {far_mass} on area {far_area.mean:.2f}")
    return Outcome(ok, "; ".join(parts))


@claim("08", "occlusion-erase", "Erasing with a black square, occlusion sensitivity lies on the "
       "strokes: its density on the ink is above 2 for every seed of both networks, and on the far "
       "background below 0.1.", uses=(R,))
def _():
    res = results(R)
    ok, parts, vals = True, [], {}
    for kind, name in NETS.items():
        r = res["occlusion"][kind]["erase"]
        ink, band, far = (_region(r, kind, g) for g in ("ink", "band", "far"))
        ok &= ink.min > 2 and far.max < 0.1
        parts.append(f"{name}: ink {ink}, band {band}, far {far}")
        vals.update({f"{kind}_ink": ink.mean, f"{kind}_band": band.mean, f"{kind}_far": far.mean,
                     f"{kind}_ink_mass": 100 * _region(r, kind, "ink", "mass").mean,
                     "ink_area": 100 * _region(r, kind, "ink", "area").mean})
    return Outcome(ok, "; ".join(parts), values=vals)


@claim("08", "occlusion-gray", "With Zeiler and Fergus's gray square, the score falls most where "
       "the square lands next to the strokes: the band's density is above the ink's for every seed "
       "of both networks.", uses=(R,))
def _():
    res = results(R)
    ok, parts, vals = True, [], {}
    for kind, name in NETS.items():
        r = res["occlusion"][kind]["gray"]
        ink, band, far = (_region(r, kind, g) for g in ("ink", "band", "far"))
        ok &= all(b > i for b, i in zip(band.values, ink.values))
        parts.append(f"{name}: ink {ink}, band {band}, far {far}")
        vals.update({f"{kind}_ink": ink.mean, f"{kind}_band": band.mean, f"{kind}_far": far.mean})
    return Outcome(ok, "; ".join(parts), values=vals)


@claim("08", "gradcam-strokes", "Grad-CAM at ResNet-8's last stage puts more than its share on the "
       "digit and its surroundings (density on the ink and on the band above 1, on the far background "
       "below 1); LeNet-5's, at C3 under a fully connected head, does not: its far background's density "
       "is above 1 in every seed.", uses=(R,))
def _():
    res = results(R)
    parts, vals = [], {}
    st = {}
    for kind, name in NETS.items():
        r = res["gradcam"][kind]
        st[kind] = ink, band, far = tuple(_region(r, kind, g) for g in ("ink", "band", "far"))
        parts.append(f"{name}: ink {ink}, band {band}, far {far}")
        vals.update({f"{kind}_ink": ink.mean, f"{kind}_band": band.mean, f"{kind}_far": far.mean,
                     f"{kind}_far_mass": 100 * _region(r, kind, "far", "mass").mean})
    ink, band, far = st["resnet"]
    ok = ink.min > 1 and band.min > 1 and far.max < 1 and st["lenet"][2].min > 1
    return Outcome(ok, "; ".join(parts), values=vals)


@claim("08", "patch-purity", "The deeper the layer, the more a channel's top-9 test digits show one "
       "digit: in every seed, ResNet-8's layer3 is above its conv1 by more than 0.2 and LeNet-5's "
       "C3 is above its C1.", uses=(R,))
def _():
    res = results(R)["purity"]
    rl = {k: Stat([s[k] for s in res["resnet"]], ".2f") for k in ("conv1", "layer1", "layer2", "layer3")}
    ll = {k: Stat([s[k] for s in res["lenet"]], ".2f") for k in ("C1", "C3")}
    ok = all(s["layer3"] > s["conv1"] + 0.2 for s in res["resnet"]) and all(s["C3"] > s["C1"] for s in res["lenet"])
    ev = "ResNet-8 " + ", ".join(f"{k} {v}" for k, v in rl.items()) + "; LeNet-5 " + ", ".join(f"{k} {v}" for k, v in ll.items())
    vals = {k: v.mean for k, v in rl.items()} | {k: v.mean for k, v in ll.items()}
    return Outcome(ok, ev, values=vals)


@claim("08", "class-model-lambda", "Every class model wins its own digit at every lambda, and a "
       "larger lambda gives a smaller image, for every seed of both networks.", uses=(R,))
def _():
    res = results(R)
    lams = [str(l) for l in res["lambdas"]]
    ok, parts = True, []
    for kind, name in NETS.items():
        cm = res["class_models"][kind]
        won = [w for l in lams for w in cm["won"][l]]
        norms = [cm["norm"][l] for l in lams]  # per lambda, one value per seed
        shrinks = all(norms[i][s] > norms[i + 1][s] for i in range(len(lams) - 1) for s in range(len(norms[0])))
        ok &= min(won) == 10 and shrinks
        parts.append(f"{name}: digits won {min(won)}-{max(won)}/10; mean ||x|| "
                     + ", ".join(f"λ={l}: {Stat(n, '.2f')}" for l, n in zip(lams, norms)))
    return Outcome(ok, "; ".join(parts))


def _margin_share(S: float, other: float) -> float:
    """The part of the margin S - other that comes from pushing the others below zero."""
    return max(0.0, -other) / (S - other)


@claim("08", "softmax-vs-score", "Maximising the log-softmax instead of the score, the images also "
       "win, but the target score stops lower, for every seed of both networks; the part of the margin "
       "that comes from pushing the other classes below zero is larger with the log-softmax by less than "
       "0.1 on average for ResNet-8 and by less than 0.02 for LeNet-5.",
       uses=(R,), paper="maximise the unnormalised S_c(I) − λ‖I‖² from the zero image; the softmax is "
       "avoided because it can rise by lowering the other classes (Simonyan et al. 2013)",
       expect="partly")
def _():
    res = results(R)
    lower, others_share, small, parts, vals = True, True, True, [], {}
    for kind, name in NETS.items():
        cm = res["class_models"][kind]
        S, So = Stat(cm["score_S"], ".1f"), Stat(cm["soft_S"], ".1f")
        sh_score = [_margin_share(s, o) for s, o in zip(cm["score_S"], cm["score_other"])]
        sh_soft = [_margin_share(s, o) for s, o in zip(cm["soft_S"], cm["soft_other"])]
        lower &= S.min > So.max and min(cm["soft_won"]) == 10
        others_share &= all(a > b + 0.1 for a, b in zip(sh_soft, sh_score))
        diff = Stat(sh_soft).mean - Stat(sh_score).mean
        small &= 0 < diff < (0.1 if kind == "resnet" else 0.02)
        parts.append(f"{name}: log-softmax images won {min(cm['soft_won'])}-{max(cm['soft_won'])}/10; S_c {S} (score) vs {So} (log-softmax); share of the margin from lowering "
                     f"the others {Stat(sh_score, '.2f')} (score) vs {Stat(sh_soft, '.2f')} (log-softmax)")
        vals.update({f"{kind}_S": S.mean, f"{kind}_soft_S": So.mean, f"{kind}_S_sd": S.std, f"{kind}_soft_S_sd": So.std, f"{kind}_share_score": 100 * Stat(sh_score).mean,
                     f"{kind}_share_soft": 100 * Stat(sh_soft).mean,
                     f"{kind}_share_score_min": 100 * min(sh_score), f"{kind}_share_score_max": 100 * max(sh_score),
                     f"{kind}_share_soft_min": 100 * min(sh_soft), f"{kind}_share_soft_max": 100 * max(sh_soft)})
    # the paper's reason (the softmax rises by lowering the others) in full; only the weaker
    # form (the softmax builds less evidence for the class) in part
    return Outcome(small, "; ".join(parts), values=vals, verdict=verdict_from(lower and others_share, lower))


@claim("08", "regularised-recognised", "ResNet-8's class models made with our regularisers (jitter, "
       "blur, pixels clipped to [0, 1]; of Yosinski et al.'s priors only the blur) are recognised by the LeNet-5 networks more often than its plain "
       "ones, while its other seeds read them at most 5 times in 10 either way; LeNet-5's class models are "
       "recognised by the other LeNet-5 seeds with or without them, and by ResNet-8 hardly more than by "
       "chance either way.",
       uses=(R,), paper="L2 decay, Gaussian blur and clipping of small-norm and small-contribution pixels "
       "give more recognisable, more interpretable images (Yosinski et al. 2015)", expect="partly")
def _():
    res = results(R)
    parts, vals, full, partial = [], {}, True, False
    for kind, name in NETS.items():
        cm = res["class_models"][kind]
        for who, key in (("the other seeds", "by_others"), ("the other architecture", "by_other_kind")):
            if not cm[f"plain_{key}"]:
                continue  # one seed only: no other seed to judge
            p, r = Stat(cm[f"plain_{key}"], ".1f"), Stat(cm[f"regularised_{key}"], ".1f")
            full &= r.mean > p.mean + 1 or p.min == 10  # nothing to gain above 10 of 10
            partial |= r.mean > p.mean + 1
            parts.append(f"{name}'s images judged by {who}: plain {p}, regularised {r} of 10")
            vals[f"{kind}_{key}_plain"], vals[f"{kind}_{key}_reg"] = p.mean, r.mean
            vals[f"{kind}_{key}_plain_sd"], vals[f"{kind}_{key}_reg_sd"] = p.std, r.std
    cm_l, cm_r = res["class_models"]["lenet"], res["class_models"]["resnet"]
    # the sentence itself: ResNet-8's images gain; LeNet-5's are read by LeNet-5 either way and by
    # ResNet-8 at most 3 of 10 either way
    text_ok = (Stat(cm_r["regularised_by_other_kind"]).mean > Stat(cm_r["plain_by_other_kind"]).mean + 1
               and min(cm_l["plain_by_others"] + cm_l["regularised_by_others"]) >= 9
               and max(cm_l["plain_by_other_kind"] + cm_l["regularised_by_other_kind"]) <= 3
               and max(cm_r["plain_by_others"] + cm_r["regularised_by_others"]) <= 5)
    verdict = verdict_from(full, partial) if text_ok else "not reproduced here"
    priors = ("our priors: jitter 1 px, blur σ = 0.5 every 4 steps, pixels clipped to [0, 1], λ = 0.01 in both "
              "runs (of Yosinski et al.'s priors only the blur)")
    return Outcome(True, priors + "; " + "; ".join(parts), values=vals, verdict=verdict)


@claim("08", "actmax-beats-digits", "Activation maximisation from gray noise excites every channel "
       "of LeNet-5's C3 (every seed) and most channels of ResNet-8's layer3 more than the strongest of the "
       "1,000 test digits does.", uses=(R,))
def _():
    res = results(R)["actmax"]
    parts, vals = [], {}
    b = {}
    for kind, name in NETS.items():
        b[kind] = Stat(res[kind]["beats"], ".2f")
        ratio = Stat(res[kind]["ratio_median"], ".1f")
        parts.append(f"{name}: share of channels beaten {b[kind]}, median ratio synthetic / best digit {ratio}")
        vals[f"{kind}_beats"], vals[f"{kind}_ratio"] = 100 * b[kind].mean, ratio.mean
    ok = b["lenet"].min == 1.0 and b["resnet"].min > 0.5
    return Outcome(ok, "; ".join(parts), values=vals)


@claim("08", "dream", "DeepDream on the gray astronaut photo (3 octaves of 10 steps) raises the mean "
       "squared response of ResNet-8's layer2 at least twofold in every seed, changing a pixel by less than "
       "a third of the gray range on average.", uses=(R,))
def _():
    d = results(R)["dream"]
    gain = Stat([a / b for a, b in zip(d["energy_after"], d["energy_before"])], ".1f")
    change = Stat(d["mean_abs_change"], ".3f")
    return Outcome(gain.min >= 2 and change.max < 1 / 3, f"gain {gain}, mean |change| {change}",
                   values={"gain": gain.mean, "gain_sd": gain.std, "gain_min": gain.min, "gain_max": gain.max,
                           "change": change.mean, "change_sd": change.std})


@claim("08", "gradcam-cam", "For ResNet-8, whose head is global average pooling and one linear layer, "
       "Grad-CAM at layer3 equals the positive part of the class activation map divided by the 49 "
       "positions.", uses=(R,), paper="Grad-CAM: α_k^c = (1/Z) Σ_ij ∂y^c/∂A^k_ij, L^c = ReLU(Σ_k α_k^c A^k); "
       "it generalises CAM (Selvaraju et al. 2017)", expect="reproduced")
def _():
    gaps = Stat(results(R)["gradcam"]["cam_identity_rel_gap"], ".1e")
    full = gaps.max < 1e-5
    return Outcome(full, f"largest relative gap {gaps.max:.1e} over 100 digits × {gaps.n} seeds",
                   values={"gap": gaps.max}, verdict=verdict_from(full, gaps.max < 1e-2))


@claim("08", "zf-patches", "Channel by channel, the top-9 patches go from stroke pieces shared by "
       "many digits to whole digits of one class as the layers deepen: ResNet-8's share of one digit rises "
       "from conv1 to layer3 in every seed, but not at every stage in every seed (layer1 and layer2 are "
       "within the noise of each other).", uses=(R,),
       paper="top-9 patches per feature map for layers 2–5; higher layers respond to object parts and "
       "whole objects (Zeiler & Fergus 2014)", expect="partly")
def _():
    res = results(R)["purity"]["resnet"]
    order = ("conv1", "layer1", "layer2", "layer3")
    monotone = all(all(s[a] <= s[b] for a, b in zip(order, order[1:])) for s in res)
    top = Stat([s["layer3"] for s in res], ".2f")
    first = Stat([s["conv1"] for s in res], ".2f")
    full = monotone and top.min > 0.5
    rises = all(s["layer3"] > s["conv1"] for s in res)
    every = [all(s[a] <= s[b] for a, b in zip(order, order[1:])) for s in res]
    dips = ", ".join(f"seed {i} dipping from {a} to {b}" for i, s in enumerate(res) for a, b in zip(order, order[1:])
                     if s[a] > s[b])
    return Outcome(rises and not monotone, f"ResNet-8 share of one digit among the top 9: conv1 {first} → layer3 {top}"
                   f" (rising at every stage in {sum(every)} of {len(res)} ResNet-8 runs" + (f", {dips})" if dips else ")"),
                   verdict=verdict_from(full, top.mean > first.mean))


@lru_cache(maxsize=1)
def _class_map_shares() -> list[float]:
    """ResNet-8 s0's Grad-CAM at layer3 for each of the ten classes on the first test digit of each
    class: per digit, the true class's share of the ten maps' total."""
    import torch

    from ..attribution import grad_cam
    from ..data import mnist5k
    from ..experiments.interpretation import load_networks

    net = load_networks()["ResNet-8"]
    split = mnist5k()
    X, y = split.X_test, split.y_test
    idx = torch.tensor([int((y == d).nonzero()[0]) for d in range(10)])
    cams = torch.stack([grad_cam(net, X[idx], "layer3", torch.full((10,), c)) for c in range(10)])
    mass = cams.flatten(2).sum(2)  # (class asked about, digit)
    return [float(v) for v in mass.diagonal() / mass.sum(0)]


@claim("08", "gradcam-class", "ResNet-8 s0's Grad-CAM is class-discriminative: on one test digit of "
       "each class, the map for the true class holds on average more than a third of the ten class "
       "maps' total (a tenth would mean no dependence on the class asked about).")
def _():
    sh = Stat(_class_map_shares(), ".2f")
    return Outcome(sh.mean > 1 / 3, f"true class's share of the ten maps' total over the 10 digits: {sh} "
                   "(ResNet-8 s0 only: the other seeds' networks are not stored)",
                   values={"share": 100 * sh.mean, "share_min": 100 * sh.min, "share_max": 100 * sh.max})
