"""Test-time augmentation (TTA) on the digits, for the chapter "Data augmentation"
(``book/04-augmentation.md``, slide «Аугментация»: "На этапе применения можно сделать несколько
аугментаций картинки, применить сеть к каждой, усреднить предсказания").

Every TTA scheme of the chapter (:data:`TTA_NAMES`) is applied to the two seed-0 networks that
the experiment ``augmentation`` trained on 1,000 images and saved (without and with
augmentation), on the 1,000 MNIST-5k test images. For each scheme and network the results hold
which test images are predicted right (``correct``, 0/1 per image, in test-set order) and the
number of forward passes per image, counted by a forward hook on the network (not timed).

    python -m convnets.experiments augmentation_tta          # a few minutes of CPU time
    python -m convnets.experiments augmentation_tta --quick  # 50 test images, for the tests

It needs the checkpoints ``results/augmentation_{none,augmented}_n1000.pt`` written by
``python -m convnets.experiments augmentation``; ``--quick`` uses two freshly initialised
networks instead when they are absent.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from .. import augment
from ..data import mnist5k
from ..train import load_checkpoint, seed_everything
from . import results_dir
from .augmentation import make_model

#: The test-time schemes of the chapter, in the order it shows them.
TTA_NAMES = ("plain (1 view)", "5 crops: shifts of ±2 px (5 views)", "random affine (8 views)",
             "random affine (16 views)", "10 crops: shifts and flips (10 views)")
PLAIN, SHIFT5, AFFINE8, AFFINE16, TEN = TTA_NAMES
#: The two networks: no augmentation, and the training augmentation of the chapter.
ARMS = ("none", "augmented")


def tta_schemes() -> dict[str, dict[str, Any]]:
    """The keyword arguments of :func:`convnets.augment.tta_predict` for each scheme; the random
    affine schemes draw from a seeded generator (call ``reset()`` on it before each use)."""
    return {
        PLAIN: dict(transforms=None),
        SHIFT5: dict(transforms=augment.five_crop_views(28, padding=2)),
        AFFINE8: dict(transforms=augment.digits_batch_augment(seed=0), n=8),
        AFFINE16: dict(transforms=augment.digits_batch_augment(seed=0), n=16),
        TEN: dict(transforms=augment.ten_crop_views(28, padding=2)),
    }


class MissingCheckpoint(FileNotFoundError):
    """The experiment ``augmentation`` has not saved its seed-0 networks."""


def load_nets() -> dict[str, torch.nn.Module]:
    """The seed-0 networks trained on 1,000 images without (``"none"``) and with
    (``"augmented"``) augmentation, saved by the experiment ``augmentation``, in eval mode."""
    nets = {}
    for arm in ARMS:
        path = results_dir() / f"augmentation_{arm}_n1000.pt"
        if not path.is_file():
            raise MissingCheckpoint(f"no checkpoint {path}: run `python -m convnets.experiments augmentation`")
        nets[arm] = make_model()
        load_checkpoint(path, nets[arm])
        nets[arm].eval()
    return nets


def score(nets: dict[str, torch.nn.Module], X: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Every scheme on every network: ``{"correct": {scheme: {arm: [0/1 per image]}},
    "passes": {scheme: {arm: forward passes per image}}}`` for images ``X (N, 1, 28, 28)`` with
    labels ``y (N,)``."""
    correct: dict[str, dict[str, list[int]]] = {}
    passes: dict[str, dict[str, float]] = {}
    for name, kw in tta_schemes().items():
        correct[name], passes[name] = {}, {}
        for arm, net in nets.items():
            if isinstance(kw["transforms"], augment.BatchAugment):
                kw["transforms"].reset()
            seen = [0]
            h = net.register_forward_hook(lambda m, i, o: seen.__setitem__(0, seen[0] + len(i[0])))
            try:
                with torch.inference_mode():
                    pred = augment.tta_predict(net, X, **kw).argmax(1)
            finally:
                h.remove()
            correct[name][arm] = [int(v) for v in (pred == y)]
            passes[name][arm] = seen[0] / len(X)
    return {"correct": correct, "passes": passes}


def run(quick: bool = False) -> dict[str, Any]:
    """Score every scheme on both saved networks over the 1,000 test images (``quick``: 50 test
    images, and fresh networks when the checkpoints are absent)."""
    d = mnist5k()
    X, y = d.X_test, d.y_test
    if quick:
        X, y = X[:50], y[:50]
    try:
        nets = load_nets()
    except MissingCheckpoint:
        if not quick:
            raise
        nets = {}
        for k, arm in enumerate(ARMS):
            seed_everything(k)
            nets[arm] = make_model().eval()
    t0 = time.perf_counter()
    out = score(nets, X, y)
    return {"schemes": list(TTA_NAMES), "arms": list(ARMS), "n_test": len(y), **out,
            "seconds": time.perf_counter() - t0, "torch": torch.__version__,
            "networks": "seed-0 networks of the experiment augmentation, 1,000 training images"}
