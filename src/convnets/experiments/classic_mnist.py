"""Each classic family narrowed to 28x28 and trained on MNIST 5k: parameters, MACs, seconds per
epoch and test accuracy.

Used by the chapter "Classic architectures" (``book/05-classic-architectures.md``). Run with
``python -m convnets.experiments classic_mnist``; ``quick=True`` (the tests) trains one epoch on
a tenth of the training images and tests on 200.
"""
from __future__ import annotations

import time

import torch

from convnets.data import TensorSplit, loaders, mnist5k
from convnets.flops import count_macs
from convnets.models import create_model
from convnets.train import fit, seed_everything
from convnets.utils import count_parameters

#: (label, registered factory, keyword arguments): the 28x28 member of each family.
MODELS = [
    ("LeNet-5", "lenet5", {"image_size": 28}),
    ("AlexNet-mini", "alexnet_mini", {}),
    ("VGG-mini", "vgg_mini", {}),
    ("GoogLeNet-mini", "googlenet_mini", {}),
]
EPOCHS = 6
LR = 2e-3
SEED = 0


def run(quick: bool = False) -> dict:
    """Train every model of :data:`MODELS` with Adam (lr 2e-3, batch 128) for :data:`EPOCHS`
    epochs; return one row per model and the training curves."""
    split = mnist5k()
    if quick:
        small = split.subset(per_class=40)
        split = TensorSplit(small.X_train, small.y_train, split.X_test[:200], split.y_test[:200], split.classes)
    epochs = 1 if quick else EPOCHS
    rows, curves = [], {}
    for label, name, kwargs in MODELS:
        seed_everything(SEED)
        net = create_model(name, **kwargs)
        train_loader, test_loader = loaders(split, batch_size=128, seed=SEED)
        cpu0 = time.process_time()
        hist = fit(net, train_loader, test_loader, epochs=epochs, lr=LR, device="cpu", verbose=False)
        cpu = time.process_time() - cpu0
        rows.append({
            "model": label,
            "factory": name,
            "params": count_parameters(net),
            "macs": count_macs(net, (1, 28, 28)),
            "wall_s_per_epoch": sum(hist.seconds) / epochs,
            "cpu_s_per_epoch": cpu / epochs,
            "test_acc": hist.val_acc[-1],
            "best_test_acc": max(hist.val_acc),
        })
        curves[label] = hist.to_dict()
    return {"epochs": epochs, "seed": SEED, "lr": LR, "batch_size": 128, "threads": torch.get_num_threads(), "rows": rows, "curves": curves,
            "train_size": len(split.y_train), "test_size": len(split.y_test)}
