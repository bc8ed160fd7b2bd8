"""Training curves of a deep plain CNN on MNIST 5k under each initialisation scheme.

Used by the chapter "Weight initialisation" (``book/03-initialization.md``): which schemes let a
20-layer plain ReLU CNN (no normalisation, no skip connection) train at all with SGD.

    python -m convnets.experiments initialization          # full size, saved to results/
    python -m convnets.experiments initialization --quick  # a few batches, for the tests
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
          "lr": 0.005, "momentum": 0.9, "seed": 0}


def run(quick: bool = False, device: str | None = None) -> dict:
    """Train the net once per scheme; return the configuration, each run's history (JSON-able),
    and the activation std per layer at initialisation measured on one training batch.

    ``device`` (default: CUDA when present, else the CPU) is recorded in the results; runs on
    different devices agree in what trains and what does not, not to the last digit.
    """
    cfg = dict(CONFIG)
    dev = get_device(device)
    data = mnist5k()
    if quick:
        cfg.update(depth=5, epochs=1)
        data = data.subset(per_class=10)
    train_loader, test_loader = loaders(data, batch_size=cfg["batch_size"], seed=cfg["seed"])
    X0, y0 = data.X_train[:128], data.y_train[:128]
    histories, init_std, seconds = {}, {}, {}
    # vanishing signals reach subnormal floats, which are very slow on a CPU: flush them to zero
    flush = torch.set_flush_denormal(True)
    try:
        for label, scheme, kw in SCHEMES:
            seed_everything(cfg["seed"])
            net = plain_cnn(cfg["depth"], cfg["width"], downsample_at=tuple(cfg["downsample_at"]))
            init_weights(net, scheme, **kw)
            init_std[label] = probe(net, X0, y0).act_std
            net.to(dev)
            opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
            t0 = time.perf_counter()
            h = fit(net, train_loader, test_loader, epochs=cfg["epochs"], optimizer=opt,
                    verbose=False, device=dev)
            seconds[label] = time.perf_counter() - t0
            histories[label] = {k: [None if isinstance(v, float) and not math.isfinite(v) else v for v in vals]
                                for k, vals in h.to_dict().items()}
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return {"config": cfg, "schemes": [s[0] for s in SCHEMES], "histories": histories,
            "init_act_std": init_std, "seconds": seconds, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type}
