"""Dropout against overfitting: a wide fully connected network on MNIST 5k, with and without it.

Used by the chapter "Classic architectures" (``book/05-classic-architectures.md``), section
"Dropout". AlexNet and VGG put dropout (probability 0.5) in their two hidden fully connected
layers of 4,096 units, the part of the network that can memorise the training set. The same
shape at digit scale: the 784 pixels, two hidden layers of :data:`WIDTH` ReLU units, ten outputs
(:func:`wide_head`), trained on the 4,000 training digits without augmentation, once with
``nn.Dropout(0.5)`` after each hidden layer and once without, :data:`SEEDS` seeds each, the same
optimiser, schedule and number of steps for both.

Training accuracy is measured at the end in eval mode over all 4,000 training digits (not the
running average over dropout-perturbed batches), so that train accuracy - test accuracy, the
gap, measures memorisation the same way for both arms.

Run with ``python -m convnets.experiments classic_dropout`` (the chapter prints the CPU time it
took); ``quick=True`` (the tests) is one seed, two epochs, a tenth of the data.
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from convnets.data import loaders, make_loader
from convnets.experiments.classic_mnist import _split
from convnets.train import evaluate, fit, seed_everything

WIDTH = 1024
EPOCHS = 20
LR = 1e-3
BATCH_SIZE = 128
SEEDS = (0, 1, 2)
ARMS = {"no dropout": 0.0, "dropout 0.5": 0.5}
RECIPE = (f"Adam, batch {BATCH_SIZE}, lr {LR} decaying along a cosine to 0 over {EPOCHS} epochs, "
          f"no augmentation, no weight decay")


def wide_head(p: float, width: int = WIDTH, in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """``(N, 1, 28, 28)`` -> logits ``(N, num_classes)``: flatten, two hidden layers of ``width``
    ReLU units, each followed by ``nn.Dropout(p)`` when ``p > 0`` (AlexNet's fc6/fc7 pattern)."""
    layers: list[nn.Module] = [nn.Flatten()]
    n_in = in_features
    for _ in range(2):
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        if p > 0:
            layers.append(nn.Dropout(p))
        n_in = width
    layers.append(nn.Linear(n_in, num_classes))
    return nn.Sequential(*layers)


def run(quick: bool = False) -> dict[str, Any]:
    """Both arms, every seed: final train accuracy (eval mode, all training digits), test
    accuracy, their gap, the test-accuracy curve and the CPU seconds of each run."""
    split = _split(quick)
    seeds = SEEDS[:1] if quick else SEEDS
    epochs = 2 if quick else EPOCHS
    out: dict[str, Any] = {"recipe": RECIPE, "width": WIDTH, "epochs": epochs, "seeds": list(seeds),
                           "train_size": len(split.y_train), "test_size": len(split.y_test), "arms": {}}
    for arm, p in ARMS.items():
        a = out["arms"][arm] = {"p": p, "train_acc": [], "test_acc": [], "gap": [], "test_curve": [],
                                "train_loss_curve": [], "cpu_s": []}
        for seed in seeds:
            seed_everything(seed)
            net = wide_head(p)
            tl, vl = loaders(split, batch_size=BATCH_SIZE, seed=seed)
            opt = torch.optim.Adam(net.parameters(), lr=LR)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            cpu0 = time.process_time()
            h = fit(net, tl, vl, epochs=epochs, optimizer=opt, scheduler=sched, device="cpu", verbose=False)
            train_eval = make_loader(split.X_train, split.y_train, 1000, False, seed)
            tr = evaluate(net, train_eval, device="cpu")["acc"]
            a["cpu_s"].append(time.process_time() - cpu0)
            a["train_acc"].append(tr)
            a["test_acc"].append(h.val_acc[-1])
            a["gap"].append(tr - h.val_acc[-1])
            a["test_curve"].append(h.val_acc)
            a["train_loss_curve"].append(h.train_loss)
    out["params"] = sum(p.numel() for p in wide_head(0.5).parameters())
    return out
