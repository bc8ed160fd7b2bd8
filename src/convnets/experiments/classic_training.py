"""Two training devices of the classic networks, each measured on MNIST 5k with three seeds:
SGD with momentum (AlexNet, VGG, GoogLeNet) and VGG's scale jittering.

Used by the chapter "Classic architectures" (``book/05-classic-architectures.md``), sections
"Momentum" and "Scale jittering".

- ``momentum``: the four-layer CNN of :mod:`convnets.experiments.classic_relu_tanh` (ReLU)
  trained by plain SGD with learning rate 0.01, by SGD with momentum 0.9 at the same learning
  rate, and by plain SGD at 0.1 (the step momentum 0.9 reaches in a steady direction,
  ``lr / (1 - beta)``); the training loss per epoch.
- ``jitter``: LeNet-5 (ReLU, max-pooling) trained on digits at their own scale and on digits
  randomly rescaled by a factor in :data:`JITTER_RANGE` (VGG's training scale S drawn from
  [256; 512]); both tested on the test digits rescaled by each factor of :data:`TEST_SCALES`
  (VGG's test scale Q).

Run with ``python -m convnets.experiments classic_training`` (its time is printed by the
chapter); ``quick=True`` (the tests) is one seed, one or two epochs, a tenth of the data.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from convnets.augment import BatchAugment, random_affine
from convnets.data import TensorSplit, loaders
from convnets.experiments.classic_mnist import _split  # the same MNIST 5k (and quick) split
from convnets.experiments.classic_relu_tanh import four_layer_cnn
from convnets.models import create_model
from convnets.train import evaluate, fit, seed_everything

SEEDS = (0, 1, 2)
MOMENTUM_EPOCHS = 10
#: (label, learning rate, momentum)
MOMENTUM_ARMS = (("SGD, lr 0.01", 0.01, 0.0), ("SGD + momentum 0.9, lr 0.01", 0.01, 0.9),
                 ("SGD, lr 0.1", 0.1, 0.0))
JITTER_EPOCHS = 10
JITTER_RANGE = (0.6, 1.2)
TEST_SCALES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)




def run_momentum(seeds, epochs: int, split: TensorSplit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, lr, beta in MOMENTUM_ARMS:
        arm = out[label] = {"lr": lr, "momentum": beta, "train_loss": [], "test_acc": []}
        for seed in seeds:
            seed_everything(seed)
            net = four_layer_cnn("relu")
            tl, vl = loaders(split, batch_size=64, seed=seed)
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=beta)
            h = fit(net, tl, vl, epochs=epochs, optimizer=opt, device="cpu", verbose=False)
            arm["train_loss"].append(h.train_loss)
            arm["test_acc"].append(h.val_acc)
    return out


def rescale(X: torch.Tensor, factor: float) -> torch.Tensor:
    """Every image of ``X (N, C, H, W)`` zoomed by ``factor`` about its centre (same size)."""
    return random_affine(X, degrees=0.0, translate=0.0, scale=(factor, factor))


def run_jitter(seeds, epochs: int, split: TensorSplit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    test_sets = {str(s): TensorSplit(split.X_train[:1], split.y_train[:1], rescale(split.X_test, s),
                                     split.y_test, split.classes) for s in TEST_SCALES}
    for arm_name, lo_hi in (("fixed scale", None), ("jittered scale", JITTER_RANGE)):
        arm = out[arm_name] = {"test_acc": {str(s): [] for s in TEST_SCALES}, "final_train_loss": []}
        for seed in seeds:
            seed_everything(seed)
            net = create_model("lenet5", image_size=28, activation="relu", pooling="max")
            tl, _ = loaders(split, batch_size=128, seed=seed)
            aug = None
            if lo_hi is not None:
                aug = BatchAugment([lambda X, g: random_affine(X, 0.0, 0.0, lo_hi, g)], seed=seed,
                                   names=[f"rescale{lo_hi}"])
            opt = torch.optim.Adam(net.parameters(), lr=2e-3)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            h = fit(net, tl, None, epochs=epochs, optimizer=opt, scheduler=sched, batch_transform=aug,
                    device="cpu", verbose=False)
            arm["final_train_loss"].append(h.train_loss[-1])
            for s, ts in test_sets.items():
                _, vl = loaders(ts, seed=seed)
                arm["test_acc"][s].append(evaluate(net, vl, device="cpu")["acc"])
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Both experiments; seconds of wall time for each."""
    split = _split(quick)
    seeds = SEEDS[:1] if quick else SEEDS
    res: dict[str, Any] = {"seeds": list(seeds), "train_size": len(split.y_train), "test_size": len(split.y_test),
                           "jitter_range": list(JITTER_RANGE),
                           "test_scales": list(TEST_SCALES), "seconds": {}}
    plan = (("momentum", run_momentum, 1 if quick else MOMENTUM_EPOCHS),
            ("jitter", run_jitter, 1 if quick else JITTER_EPOCHS))
    for name, fn, epochs in plan:
        t0 = time.perf_counter()
        res[name] = fn(seeds, epochs, split)
        res[name + "_epochs"] = epochs
        res["seconds"][name] = time.perf_counter() - t0
    return res
