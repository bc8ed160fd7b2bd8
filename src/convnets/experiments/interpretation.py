"""The measurements behind the chapter "What convolutional networks learn"
(``book/08-interpretation.md``).

For LeNet-5 (8 epochs, Adam 2e-3; seeds 0, 1, 2) and ResNet-8 (the recipe of chapter 7's source
model, :mod:`convnets.experiments.source_model`, trained here on the CPU; seeds 0, 1, 2: three
networks that are not the source-model checkpoint itself), on MNIST 5k:

- ``saliency``: where ``|dS_c/dx|`` lies over the 1,000 test digits: on the ink (pixels > 0.3),
  in a band of background within 1 or 2 pixels of the ink, or on the far background; mass,
  area and density (mass / area) per region (:func:`convnets.attribution.region_shares`);
- ``occlusion``: the same for the positive part of occlusion sensitivity (4x4 square, stride 2,
  black ``fill=0`` "erasing" and gray ``fill=0.5`` as Zeiler and Fergus), on every 20th test
  digit (50);
- ``gradcam``: the same for Grad-CAM at the last convolutional stage, and the largest gap
  between Grad-CAM and the positive class activation map of ResNet-8's GAP + linear head;
- ``purity``: for each layer, the mean share of a channel's top-9 test digits that show its
  most common digit;
- ``class_models``: class models for several lambda (digits won, image norm), the score against
  the log-softmax objective, and plain against regularised images judged by the *other* seeds'
  networks;
- ``actmax``: each channel of the last stage maximised from gray noise, against the strongest
  response of any test digit;
- ``dream``: DeepDream on a gray photo from scikit-image with ResNet-8's ``layer2``.

- ``gallery``: the chapter's synthetic images from the seed-0 networks (:func:`gallery`).

``python -m convnets.experiments interpretation`` writes ``results/interpretation.json``, the
seed-0 networks (``results/interpretation_lenet_s0.pt``, ``results/interpretation_resnet8_s0.pt``)
and the gallery (``results/interpretation_gallery.pt``). Trained
models and finished phases are kept in a scratch folder under the system's temporary directory,
so that a run stopped half-way (the shared machine's memory) resumes where it stopped.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["SEEDS", "LAMBDAS", "train_lenet", "train_resnet8", "live_channels", "gallery", "load_networks",
           "load_gallery", "run"]

_SCRATCH_VERSION = 1
SEEDS = (0, 1, 2)
#: seeds per network: three of each, so that every compared number has a spread over networks
NET_SEEDS = {"lenet": SEEDS, "resnet": SEEDS}
#: the seed-0 networks and the chapter's gallery of synthetic images, written next to the JSON
#: (``results/``) by a full run, so that the chapter draws them without recomputing
NETS_FILE = {"lenet": "interpretation_lenet_s0.pt", "resnet": "interpretation_resnet8_s0.pt"}
GALLERY_FILE = "interpretation_gallery.pt"
#: the chapter's galleries: class models per lambda, 200 steps of 0.1 from the zero image; the
#: channels of ResNet-8's stages from gray noise; dreams on three gray photos at 128 px
GALLERY_PHOTOS = ("astronaut", "chelsea", "rocket")
AM_GALLERY = dict(steps=100, lr=0.05, jitter=1, clip=(0.0, 1.0), seed=0)
DREAM = dict(octaves=3, steps=10, lr=0.02)
LAMBDAS = (0.0, 0.01, 0.1, 1.0)
#: the regularised class model of the chapter (Yosinski et al. 2015's priors adapted to digits)
REGULARISED = dict(steps=200, lr=0.1, l2=0.01, jitter=1, blur_sigma=0.5, blur_every=4, clip=(0.0, 1.0))
PLAIN = dict(steps=200, lr=0.1, l2=0.01)
LAYERS = {"lenet": {"C1": "features.0", "C3": "features.3"},
          "resnet": {"conv1": "conv1", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3"}}
CAM_LAYER = {"lenet": "features.4", "resnet": "layer3"}
ACT_LAYER = {"lenet": "features.3", "resnet": "layer3"}


def train_lenet(seed: int, split, epochs: int = 8) -> tuple[torch.nn.Module, float]:
    """LeNet-5 as the chapter trains it: 8 epochs of Adam at 2e-3, batch 128. ``(model, test acc)``."""
    from ..data import loaders
    from ..models import lenet5
    from ..train import fit, seed_everything

    tr, te = loaders(split, batch_size=128, seed=seed)
    seed_everything(seed)
    net = lenet5(image_size=28)
    h = fit(net, tr, te, epochs=epochs, lr=2e-3, device="cpu", verbose=False)
    return net.eval(), float(h.val_acc[-1])


def train_resnet8(seed: int, split, epochs: int | None = None) -> tuple[torch.nn.Module, float]:
    """ResNet-8 with the source model's recipe (Adam, cosine schedule, weight decay), seed ``seed``."""
    from ..data import loaders
    from ..train import evaluate, fit, seed_everything
    from .source_model import SOURCE_CONFIG, build_source_model

    cfg = dict(SOURCE_CONFIG)
    epochs = cfg["epochs"] if epochs is None else epochs
    seed_everything(seed)
    tr, te = loaders(split, batch_size=cfg["batch_size"], seed=seed)
    net = build_source_model()
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    fit(net, tr, None, epochs=epochs, optimizer=opt, scheduler=sched, device="cpu", verbose=False)
    return net.eval(), float(evaluate(net, te)["acc"])


def _scratch(quick: bool) -> Path:
    """A scratch folder for trained models and finished phases, so that a run that is killed
    (a shared machine's memory) resumes where it stopped; keyed on this file's source."""
    d = Path(tempfile.gettempdir()) / f"convnets-interpretation-v{_SCRATCH_VERSION}{'-quick' if quick else ''}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _phase(scratch: Path, name: str, fn):
    """The result of ``fn()``, cached as JSON in ``scratch``."""
    f = scratch / f"{name}.json"
    if f.is_file():
        return json.loads(f.read_text())
    out = fn()
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, f)
    return out


def _phase_pt(scratch: Path, name: str, fn):
    """Like :func:`_phase`, for results holding tensors (saved with ``torch.save``)."""
    f = scratch / f"{name}.pt"
    if f.is_file():
        return torch.load(f, weights_only=True)
    out = fn()
    tmp = f.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, f)
    return out


def _batched(fn, X, *args, n: int = 250):
    """``fn(X[i:i+n], *[a[i:i+n] ...])`` concatenated: bounds the memory of backward passes."""
    return torch.cat([fn(X[i : i + n], *(a[i : i + n] for a in args)) for i in range(0, len(X), n)])


def _shares(maps: torch.Tensor, X: torch.Tensor, band: int) -> dict[str, dict[str, float]]:
    from ..attribution import region_shares, stroke_regions

    sh = region_shares(maps, stroke_regions(X, band=band))
    out = {}
    for r, v in sh.items():
        d = v["density"].numpy()
        out[r] = {"mass": float(np.nanmean(v["mass"].numpy())), "area": float(v["area"].mean()),
                  "density": float(np.nanmean(d)), "density_sd_images": float(np.nanstd(d))}
    return out


def _purity(net, layers: dict[str, str], X, y) -> dict[str, float]:
    from ..interpret import top_activating_patches

    out = {}
    for label, name in layers.items():
        p = top_activating_patches(net, name, X, k=9)
        shares = []
        for r in range(len(p.channels)):
            if torch.allclose(p.values[r], p.values[r, :1].expand(p.values.shape[1])):
                continue  # a dead channel
            shares.append(torch.bincount(y[p.indices[r]], minlength=10).max().item() / 9)
        out[label] = float(np.mean(shares))
    return out


def _layer_means(net, layer: str, X) -> torch.Tensor:
    """Each image's mean response per channel of ``layer``: ``(N, K)``."""
    got = {}
    h = net.get_submodule(layer).register_forward_hook(lambda m, i, o: got.__setitem__("a", o.clone()))
    with torch.no_grad():
        net(X)
    h.remove()
    return got["a"].mean((2, 3))


def live_channels(p, n: int = 8) -> list[int]:
    """The first ``n`` channels of a :class:`~convnets.interpret.TopPatches` whose responses are
    not all equal (a dead channel tells nothing)."""
    keep = [c for r, c in enumerate(p.channels)
            if not torch.allclose(p.values[r], p.values[r, :1].expand(p.values.shape[1]))]
    return keep[:n]


def gallery(lenet: torch.nn.Module, resnet: torch.nn.Module, quick: bool = False) -> dict[str, Any]:
    """The chapter's synthetic images, from its two networks (seed 0 of each):

    - ``class_models[name][lam]``: ``{"image" (10, 1, 28, 28), "logits" (10, 10), "norm" (10,)}``
      for each lambda of :data:`LAMBDAS` (plain ascent), ``"log_softmax"`` (lambda 0.01) and
      ``"regularised"`` (:data:`REGULARISED`);
    - ``actmax[layer]``: ``{"channels": [8 ints], "image" (8, 1, 28, 28)}`` for ResNet-8's
      ``layer1``-``layer3``, each channel maximised from gray noise (:data:`AM_GALLERY`);
    - ``dreams[row]``: a list of ``(1, H, W)`` images (shorter side 128 px), one per photo of
      :data:`GALLERY_PHOTOS` in gray:
      ``"layer2"`` (the whole layer amplified) and ``"layer3"`` (channel ``dream_channel``).
    Images are stored as float16, logits as float32; ``seconds`` per part.
    """
    from .. import interpret as I
    from ..data import mnist5k, photos

    X = mnist5k().X_test
    steps = 20 if quick else 200
    digits = list(range(10))
    out: dict[str, Any] = {"class_models": {}, "actmax": {}, "dreams": {}, "seconds": {}}

    def pack(r) -> dict[str, torch.Tensor]:
        return {"image": r.image.detach().half(), "logits": r.logits.detach().float(),
                "norm": torch.tensor(r.norms[-1], dtype=torch.float32)}

    t = time.perf_counter()
    for name, net in (("LeNet-5", lenet), ("ResNet-8", resnet)):
        cm: dict[Any, Any] = {}
        for lam in LAMBDAS:
            cm[lam] = pack(I.class_model(net, digits, (1, 28, 28), steps=steps, lr=0.1, l2=lam))
        cm["log_softmax"] = pack(I.class_model(net, digits, (1, 28, 28), steps=steps, lr=0.1, l2=PLAIN["l2"],
                                               objective="log_softmax"))
        cm["regularised"] = pack(I.class_model(net, digits, (1, 28, 28), seed=0, **(REGULARISED | {"steps": steps})))
        out["class_models"][name] = cm
    out["seconds"]["class_models"] = time.perf_counter() - t

    t = time.perf_counter()
    for layer in ("layer1", "layer2", "layer3"):
        chans = live_channels(I.top_activating_patches(resnet, layer, X, k=9), 8)
        r = I.activation_maximization(resnet, layer, chans, (1, 28, 28),
                                      **(AM_GALLERY | {"steps": steps // 2}))
        out["actmax"][layer] = {"channels": chans, "image": r.image.detach().half(),
                                "activation": torch.tensor(r.activation[-1], dtype=torch.float32)}
    out["seconds"]["actmax"] = time.perf_counter() - t

    t = time.perf_counter()
    gray = {k: v.mean(0, keepdim=True) for k, v in photos(list(GALLERY_PHOTOS), size=128).items()}
    ch3 = out["actmax"]["layer3"]["channels"][0]
    dream = DREAM | ({"steps": 2} if quick else {})
    out["dream_channel"] = ch3
    out["dreams"]["layer2"] = [I.deep_dream(resnet, "layer2", img, **dream).image[0].half()
                               for img in gray.values()]
    out["dreams"]["layer3"] = [I.deep_dream(resnet, "layer3", img, channel=ch3, **dream).image[0].half()
                               for img in gray.values()]
    out["seconds"]["dreams"] = time.perf_counter() - t
    out["photos"] = list(GALLERY_PHOTOS)
    out["quick"] = quick
    return out


def _net(kind: str) -> torch.nn.Module:
    from ..models import lenet5
    from .source_model import build_source_model

    return lenet5(image_size=28) if kind == "lenet" else build_source_model()


def load_networks() -> dict[str, torch.nn.Module]:
    """The chapter's two networks, seed 0 of each (``{"LeNet-5": ..., "ResNet-8": ...}``, in eval
    mode), read from ``results/`` (written by a full run); trained now (a few minutes on one CPU
    core) when missing."""
    from ..data import mnist5k
    from ..train import load_checkpoint
    from . import results_dir

    nets = {}
    for kind, name, trainer in (("lenet", "LeNet-5", train_lenet), ("resnet", "ResNet-8", train_resnet8)):
        f = results_dir() / NETS_FILE[kind]
        if f.is_file():
            net = _net(kind)
            load_checkpoint(f, net)
        else:
            net, _ = trainer(0, mnist5k())
        nets[name] = net.eval()
    return nets


def load_gallery() -> dict[str, Any]:
    """The chapter's gallery (:func:`gallery`), read from ``results/`` or computed now (a few
    minutes on one CPU core) when missing."""
    from . import results_dir

    f = results_dir() / GALLERY_FILE
    if f.is_file():
        return torch.load(f, weights_only=True)
    nets = load_networks()
    return gallery(nets["LeNet-5"], nets["ResNet-8"])


def run(quick: bool = False) -> dict[str, Any]:
    """All the chapter's cached measurements; ``quick``: 1 seed, 1 epoch, few images (tests)."""
    from .. import attribution as A
    from .. import interpret as I
    from ..data import mnist5k, photos
    from ..models import lenet5
    from .source_model import build_source_model

    split = mnist5k()
    X, y = split.X_test, split.y_test
    net_seeds = {k: (v[:1] if quick else v) for k, v in NET_SEEDS.items()}
    n_occ = 20 if quick else 50
    occ_idx = torch.arange(0, len(X), len(X) // n_occ)[:n_occ]  # every 20th test digit
    steps = 20 if quick else 200
    nets: dict[str, dict[int, torch.nn.Module]] = {"lenet": {}, "resnet": {}}
    res: dict[str, Any] = {"seeds": {k: list(v) for k, v in net_seeds.items()}, "lambdas": list(LAMBDAS), "models": {}, "saliency": {},
                           "occlusion": {}, "gradcam": {}, "purity": {}, "class_models": {}, "actmax": {},
                           "seconds": {}}
    scratch = _scratch(quick)
    t_run = time.perf_counter()
    train_seconds = 0.0
    for kind, trainer in (("lenet", train_lenet), ("resnet", train_resnet8)):
        accs = []
        for s in net_seeds[kind]:
            f = scratch / f"{kind}-{s}.pt"
            if f.is_file():
                blob = torch.load(f, weights_only=True)
                net = lenet5(image_size=28) if kind == "lenet" else build_source_model()
                net.load_state_dict(blob["state"])
                acc = blob["acc"]
            else:
                t = time.perf_counter()
                net, acc = trainer(s, split, epochs=1) if quick else trainer(s, split)
                torch.save({"state": net.state_dict(), "acc": acc, "seconds": time.perf_counter() - t}, f)
                blob = torch.load(f, weights_only=True)
            train_seconds += blob["seconds"]
            nets[kind][s] = net.eval()
            accs.append(acc)
        res["models"][kind] = {"test_acc": accs}
    res["seconds"]["train"] = train_seconds

    t0 = time.perf_counter()

    def maps(kind: str, s: int, net) -> dict:
        t = time.perf_counter()
        out: dict[str, Any] = {}
        m = _batched(lambda a, b: I.saliency(net, a, b), X, y)
        out["saliency"] = {f"band{b}": _shares(m, X, b) for b in (1, 2)}
        out["occlusion"] = {}
        for name, fill in (("erase", 0.0), ("gray", 0.5)):
            o = A.occlusion(net, X[occ_idx], y[occ_idx], window=4, stride=2, fill=fill)
            out["occlusion"][name] = _shares(o.clamp_min(0), X[occ_idx], 2) | {
                "positive_share": float(o.clamp_min(0).sum() / o.abs().sum())}
        g = _batched(lambda a, b: A.grad_cam(net, a, CAM_LAYER[kind], b), X, y)
        out["gradcam"] = _shares(g, X, 2) | {"zero_maps": int((g.flatten(1).sum(1) == 0).sum())}
        out["purity"] = _purity(net, LAYERS[kind], X, y)
        out["seconds"] = time.perf_counter() - t
        return out

    for kind, by_seed in nets.items():
        per = [_phase(scratch, f"maps-{kind}-{s}", lambda: maps(kind, s, net)) for s, net in by_seed.items()]
        res["saliency"][kind] = {f"band{b}": [p["saliency"][f"band{b}"] for p in per] for b in (1, 2)}
        res["occlusion"][kind] = {f: [p["occlusion"][f] for p in per] for f in ("erase", "gray")}
        res["gradcam"][kind] = [p["gradcam"] for p in per]
        res["purity"][kind] = [p["purity"] for p in per]
        res["seconds"]["maps"] = res["seconds"].get("maps", 0.0) + sum(p["seconds"] for p in per)
    # the identity Grad-CAM = ReLU(CAM) / (h w) for ResNet-8's GAP + linear head
    gaps = []
    for net in nets["resnet"].values():
        c = A.class_activation_map(net, X[:100], "layer3", net.fc, y[:100])
        g = A.grad_cam(net, X[:100], "layer3", y[:100], upsample=False)
        gaps.append(float((g - c.clamp_min(0) / c[0].numel()).abs().max() / c.abs().max()))
    res["gradcam"]["cam_identity_rel_gap"] = gaps

    digits = list(range(10))

    def class_models(net, s: int) -> dict:
        t = time.perf_counter()
        out: dict[str, Any] = {"won": {}, "norm": {}}
        for lam in LAMBDAS:
            r = I.class_model(net, digits, (1, 28, 28), steps=steps, lr=0.1, l2=lam)
            out["won"][str(lam)] = int((r.logits.argmax(1) == torch.arange(10)).sum())
            out["norm"][str(lam)] = float(np.mean(r.norms[-1]))
            if lam == PLAIN["l2"]:
                S = r.logits.diag()
                out["score_S"], out["score_other"] = float(S.mean()), float(((r.logits.sum(1) - S) / 9).mean())
                out["plain"] = r.image.tolist()
        r = I.class_model(net, digits, (1, 28, 28), steps=steps, lr=0.1, l2=PLAIN["l2"], objective="log_softmax")
        S = r.logits.diag()
        out["soft_S"], out["soft_other"] = float(S.mean()), float(((r.logits.sum(1) - S) / 9).mean())
        out["soft_won"] = int((r.logits.argmax(1) == torch.arange(10)).sum())
        out["regularised"] = I.class_model(net, digits, (1, 28, 28), seed=s, **(REGULARISED | {"steps": steps})).image.tolist()
        out["seconds"] = time.perf_counter() - t
        return out

    cms = {kind: {s: _phase(scratch, f"cm-{kind}-{s}", lambda: class_models(net, s)) for s, net in by_seed.items()}
           for kind, by_seed in nets.items()}
    for kind in nets:
        per = [cms[kind][s] for s in net_seeds[kind]]
        cm: dict[str, Any] = {"won": {str(l): [p["won"][str(l)] for p in per] for l in LAMBDAS},
                              "norm": {str(l): [p["norm"][str(l)] for p in per] for l in LAMBDAS}}
        for key in ("score_S", "score_other", "soft_S", "soft_other", "soft_won"):
            cm[key] = [p[key] for p in per]
        # recognised by independently trained networks: the other seeds of the same architecture
        # and every seed of the other architecture
        other = "resnet" if kind == "lenet" else "lenet"
        for style in ("plain", "regularised"):
            cm[f"{style}_by_others"], cm[f"{style}_by_other_kind"] = [], []
            for s in net_seeds[kind]:
                img = torch.tensor(cms[kind][s][style])
                with torch.no_grad():
                    same = [int((n(img).argmax(1) == torch.arange(10)).sum())
                            for s2, n in nets[kind].items() if s2 != s]
                    cross = [int((n(img).argmax(1) == torch.arange(10)).sum()) for n in nets[other].values()]
                if same:
                    cm[f"{style}_by_others"].append(float(np.mean(same)))
                cm[f"{style}_by_other_kind"].append(float(np.mean(cross)))
        res["class_models"][kind] = cm
    res["seconds"]["class_models"] = sum(cms[k][s]["seconds"] for k in cms for s in cms[k])

    def actmax(kind: str, net, s: int) -> dict:
        t = time.perf_counter()
        best = _layer_means(net, ACT_LAYER[kind], X).max(0).values  # (K,)
        r = I.activation_maximization(net, ACT_LAYER[kind], list(range(len(best))), (1, 28, 28),
                                      steps=steps // 2, lr=0.05, jitter=1, clip=(0.0, 1.0), seed=s)
        syn = torch.tensor(r.activation[-1])
        return {"synthetic": float(syn.mean()), "best_digit": float(best.mean()),
                "beats": float((syn > best).float().mean()),
                "ratio_median": float((syn / best.clamp_min(1e-6)).median()), "seconds": time.perf_counter() - t}

    for kind, by_seed in nets.items():
        per = [_phase(scratch, f"am-{kind}-{s}", lambda: actmax(kind, net, s)) for s, net in by_seed.items()]
        res["actmax"][kind] = {k: [p[k] for p in per] for k in ("synthetic", "best_digit", "beats", "ratio_median")}
        res["seconds"]["actmax"] = res["seconds"].get("actmax", 0.0) + sum(p["seconds"] for p in per)
    # DeepDream on the astronaut photo, gray, 128 px, ResNet-8's layer2
    t0 = time.perf_counter()
    photo = photos(["astronaut"], size=128)["astronaut"].mean(0, keepdim=True)
    dream = {"energy_before": [], "energy_after": [], "mean_abs_change": []}
    for s, net in nets["resnet"].items():
        d = I.deep_dream(net, "layer2", photo, octaves=3, steps=10 if not quick else 2, lr=0.02, seed=s)
        with torch.no_grad():
            got = {}
            h = net.layer2.register_forward_hook(lambda m, i, o: got.__setitem__("a", o.clone()))
            net(photo[None])
            e0 = float(0.5 * got["a"].pow(2).mean())
            net(d.image)
            e1 = float(0.5 * got["a"].pow(2).mean())
            h.remove()
        dream["energy_before"].append(e0)
        dream["energy_after"].append(e1)
        dream["mean_abs_change"].append(float((d.image[0] - photo).abs().mean()))
    res["dream"] = dream
    res["seconds"]["dream"] = time.perf_counter() - t0
    # the chapter's networks (seed 0) and its gallery, next to the JSON
    g = _phase_pt(scratch, "gallery", lambda: gallery(nets["lenet"][0], nets["resnet"][0], quick))
    res["seconds"]["gallery"] = float(sum(g["seconds"].values()))
    if not quick:
        from ..train import save_checkpoint
        from . import results_dir

        for kind in ("lenet", "resnet"):
            save_checkpoint(results_dir() / NETS_FILE[kind], nets[kind][0], seed=0,
                            test_acc=res["models"][kind]["test_acc"][0])
        tmp = results_dir() / (GALLERY_FILE + ".tmp")
        torch.save(g, tmp)
        os.replace(tmp, results_dir() / GALLERY_FILE)
    # the sum of the phases' own times (a resumed run counts each phase once)
    res["seconds"]["total"] = sum(v for k, v in res["seconds"].items() if k != "total")
    res["wall_seconds_this_run"] = time.perf_counter() - t_run  # a resumed run: only what it computed
    res["torch"] = str(torch.__version__)
    res["quick"] = quick
    return res
