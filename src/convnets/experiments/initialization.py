"""Training curves of a deep plain CNN on MNIST 5k under each initialisation scheme.

Used by the chapter "Weight initialisation" (``book/03-initialization.md``): which schemes let a
20-layer plain ReLU CNN (no normalisation, no skip connection) train at all with SGD. Every
scheme is trained from three seeds (a seed sets the initial weights and the order of the batches),
so that the chapter can give each final figure with its spread.

    python -m convnets.experiments initialization          # full size, saved to results/
    python -m convnets.experiments initialization --quick  # a few batches, for the tests

The committed results join seed 0 (an earlier GPU run) with seeds 1 and 2 trained one run at a
time with :func:`run_one` on the CPU (one thread, about 40 s of CPU time per run); the file's
``recomputed_as``, ``seeds_by_scheme`` and ``devices_by_scheme`` say which run came from where.
Seeds can be computed in separate processes (:func:`run_one`) and joined (:func:`merge`).
"""
from __future__ import annotations

import math
import time

import torch

from ..data import loaders, mnist5k
from ..init import init_weights, plain_cnn, probe
from ..train import fit, seed_everything
from ..utils import get_device

#: (label, scheme, keyword arguments of init_weights), in the order the chapter shows them.
SCHEMES: list[tuple[str, str, dict]] = [
    ("N(0, 0.01²)", "normal", {"std": 0.01}),
    ("PyTorch default", "default", {}),
    ("Xavier", "xavier", {}),
    ("He, fan_in", "he", {"mode": "fan_in"}),
    ("He, fan_out", "he", {"mode": "fan_out"}),
    ("slide: (2/√n)·N(0,1)", "slide", {}),
]

CONFIG = {"depth": 20, "width": 16, "downsample_at": [2, 4], "epochs": 10, "batch_size": 32,
          "lr": 0.005, "momentum": 0.9, "seeds": [0, 1, 2]}


def _clean(h: dict) -> dict:
    """A history with non-finite losses as ``None`` (JSON has no NaN)."""
    return {k: [None if isinstance(v, float) and not math.isfinite(v) else v for v in vals]
            for k, vals in h.items()}


def run_one(label: str, seed: int, cfg: dict | None = None, data=None, device=None) -> dict:
    """One run of :func:`run`: the scheme labelled ``label`` (see :data:`SCHEMES`) from ``seed``
    with the configuration ``cfg`` (default :data:`CONFIG`) on ``data`` (default MNIST 5k):
    ``{"history", "init_act_std", "init_grad_std", "seconds"}`` (``seconds``: the training's wall
    time). Runs are independent, so they can be computed in separate processes."""
    cfg = dict(CONFIG) if cfg is None else cfg
    data = mnist5k() if data is None else data
    dev = device if isinstance(device, torch.device) else get_device(device)
    scheme, kw = next((s, k) for lab, s, k in SCHEMES if lab == label)
    X0, y0 = data.X_train[:128], data.y_train[:128]
    # vanishing signals reach subnormal floats, which are very slow on a CPU: flush them to zero
    flush = torch.set_flush_denormal(True)
    try:
        train_loader, test_loader = loaders(data, batch_size=cfg["batch_size"], seed=seed)
        seed_everything(seed)
        net = plain_cnn(cfg["depth"], cfg["width"], downsample_at=tuple(cfg["downsample_at"]))
        init_weights(net, scheme, **kw)
        p = probe(net, X0, y0)
        net.to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
        t0 = time.perf_counter()
        h = fit(net, train_loader, test_loader, epochs=cfg["epochs"], optimizer=opt,
                verbose=False, device=dev)
        secs = time.perf_counter() - t0
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return {"history": _clean(h.to_dict()), "init_act_std": p.act_std, "init_grad_std": p.grad_std,
            "seconds": secs}


def run(quick: bool = False, device: str | None = None, seeds: list[int] | None = None) -> dict:
    """Train the net once per scheme and seed; return the configuration, every run's history
    (JSON-able; ``histories[label][i]`` is the run of ``config["seeds"][i]``), and the std of each
    layer's output and of the gradient there at initialisation, measured by
    :func:`convnets.init.probe` (cross-entropy on one training batch of 128 images).

    ``device`` (default: CUDA when present, else the CPU) is recorded in the results; runs on
    different devices agree in what trains and what does not, not to the last digit. ``seeds``
    replaces ``CONFIG["seeds"]`` (to compute the seeds in separate processes and :func:`merge`
    the results).
    """
    cfg = dict(CONFIG)
    if seeds is not None:
        cfg["seeds"] = list(seeds)
    dev = get_device(device)
    data = mnist5k()
    if quick:
        cfg.update(depth=5, epochs=1, seeds=[0])
        data = data.subset(per_class=10)
    histories: dict[str, list] = {}
    init_std: dict[str, list] = {}
    init_grad_std: dict[str, list] = {}
    seconds: dict[str, list] = {}
    t_start = time.perf_counter()
    for label, _, _ in SCHEMES:
        for key in (histories, init_std, init_grad_std, seconds):
            key[label] = []
        for seed in cfg["seeds"]:
            one = run_one(label, seed, cfg, data, dev)
            histories[label].append(one["history"])
            init_std[label].append(one["init_act_std"])
            init_grad_std[label].append(one["init_grad_std"])
            seconds[label].append(one["seconds"])
    return {"config": cfg, "schemes": [s[0] for s in SCHEMES], "histories": histories,
            "init_act_std": init_std, "init_grad_std": init_grad_std, "seconds": seconds,
            "wall_seconds": time.perf_counter() - t_start, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type}


def merge(parts: list[dict]) -> dict:
    """One result from results of :func:`run` over disjoint seeds (same configuration otherwise):
    the per-seed lists are concatenated in the order of ``parts``; ``wall_seconds`` is the sum."""
    out = {k: v for k, v in parts[0].items()}
    out["config"] = dict(parts[0]["config"], seeds=[s for p in parts for s in p["config"]["seeds"]])
    for key in ("histories", "init_act_std", "init_grad_std", "seconds"):
        out[key] = {label: [x for p in parts for x in p[key][label]] for label in parts[0]["schemes"]}
    out["wall_seconds"] = sum(p["wall_seconds"] for p in parts)
    return out
