"""The gradient at the first layer of plain and residual networks at initialisation.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "The shortcut and the gradient at initialisation".

For :func:`convnets.models.plain_cifar` and :func:`convnets.models.resnet_cifar` (with batch norm,
width 16, one input channel) of 20 and 56 layers, three seeds each: the norm of the gradient of
the cross-entropy loss with respect to the first convolution's weight, for one batch of 32 MNIST
5k training images, in train mode, before any step. About 8 CPU-seconds, so the chapter reads the
saved numbers (``python -m convnets.experiments gradient_at_init`` recomputes them).
"""
from __future__ import annotations

import platform
import time
from typing import Any

import torch

__all__ = ["CONFIG", "QUICK_CONFIG", "first_layer_gradients", "run"]

#: The full measurement (the chapter's table).
CONFIG: dict[str, Any] = {"depths": [20, 56], "seeds": [0, 1, 2], "batch": 32, "width": 16}
#: The reduced size the tests run.
QUICK_CONFIG: dict[str, Any] = dict(CONFIG, depths=[8, 14], seeds=[0, 1], batch=8)


def first_layer_gradients(depths=(20, 56), seeds=(0, 1, 2), batch: int = 32,
                          width: int = 16) -> dict[tuple[str, int], list[float]]:
    """Norm of the loss gradient at the first convolution of ``plain_cifar`` and ``resnet_cifar``
    at initialisation (train mode, the first ``batch`` images of MNIST 5k's training split,
    ``(batch, 1, 28, 28)``): ``{(kind, depth): [norm per seed]}``."""
    from convnets.data import mnist5k
    from convnets.models import plain_cifar, resnet_cifar

    split = mnist5k()
    X, y = split.X_train[:batch], split.y_train[:batch]
    out: dict[tuple[str, int], list[float]] = {}
    for depth in depths:
        for kind, f in (("plain", plain_cifar), ("residual", resnet_cifar)):
            norms = []
            for seed in seeds:
                torch.manual_seed(seed)
                net = f(depth=depth, in_channels=1, num_classes=10, width=width)
                torch.nn.functional.cross_entropy(net(X), y).backward()
                norms.append(net.conv1.weight.grad.norm().item())
            out[(kind, depth)] = norms
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Measure :func:`first_layer_gradients` for :data:`CONFIG` (:data:`QUICK_CONFIG` when
    ``quick``). Returns ``{"config", "norms": {"plain-20": [per seed], ...}, "device", "torch",
    "seconds"}``."""
    cfg = QUICK_CONFIG if quick else CONFIG
    t0 = time.perf_counter()
    g = first_layer_gradients(tuple(cfg["depths"]), tuple(cfg["seeds"]), cfg["batch"], cfg["width"])
    return {"config": cfg, "norms": {f"{k}-{d}": v for (k, d), v in g.items()},
            "device": f"cpu ({platform.processor() or platform.machine()})", "torch": torch.__version__,
            "seconds": time.perf_counter() - t0}
