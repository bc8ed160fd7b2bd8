"""The degradation experiment without learning-rate warm-up (the first recipe tried).

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), note "Warm-up". Same as :mod:`convnets.experiments.degradation`
but 12 epochs, three seeds and lr 0.1 from the first step: the 56-layer networks of both kinds then
train badly (one residual seed stays at the loss of a uniform guess, another reaches 5% training
error: the spread is large), which is why the main experiment warms up. The saved results were
computed on one GPU (about 100 s).
"""
from __future__ import annotations

from typing import Any

import torch

from .degradation import CONFIG as _BASE
from .degradation import QUICK_CONFIG
from .degradation import run as _run

__all__ = ["CONFIG", "run"]

CONFIG: dict[str, Any] = dict(_BASE, epochs=12, seeds=[0, 1, 2], warmup_epochs=0)


def run(quick: bool = False, device: str | torch.device | None = None) -> dict[str, Any]:
    """Train every (kind, depth, seed) of :data:`CONFIG` (the degradation quick size when ``quick``)."""
    return _run(quick=quick, device=device, config=None if quick else CONFIG)
