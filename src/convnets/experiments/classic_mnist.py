"""Each classic family narrowed to 28x28 and trained on MNIST 5k with one recipe, three seeds,
beside chapter 1's two-layer CNN trained the same way.

Used by the chapter "Classic architectures" (``book/05-classic-architectures.md``), section
"Each family on MNIST 5k", subsection "A short recipe" (GoogLeNet-mini is in :data:`EXTRA_MODELS`, not
run by default; :mod:`convnets.experiments.classic_converged` trains every family to convergence).
The recipe (:data:`RECIPE`) is the same for every model: Adam,
batch 128, the learning rate decaying along a cosine from 2e-3 to zero over :data:`EPOCHS`
epochs, and a light random affine move of every training digit (:func:`convnets.augment.digits_batch_augment`:
rotation up to 10 degrees, shift up to 10 % of the side, zoom 0.9-1.1). LeNet-5 is also trained
without the augmentation (``"LeNet-5, no augmentation"``), which measures the slide's
«Использовали аугментацию» at our scale, and with ReLU and max-pooling instead of the paper's
tanh and average pooling (``"LeNet-5, ReLU + max-pool"``), and for twice the epochs
(``"LeNet-5, 20 epochs"``: the same schedule stretched over 20 epochs). Training uses the channels-last
memory layout (about 1.5x faster on a CPU for these small networks; the numbers are the same
computation).

Run with ``python -m convnets.experiments classic_mnist`` (the chapter prints the CPU time it
took); ``quick=True`` (the tests) trains one epoch on a tenth of
the training images, one seed, and tests on 200.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from convnets.augment import digits_batch_augment
from convnets.data import TensorSplit, loaders, mnist5k
from convnets.flops import count_macs
from convnets.models import create_model
from convnets.train import fit, seed_everything
from convnets.utils import count_parameters

#: (label, registered factory, keyword arguments, augment): chapter 1's CNN, then the 28x28
#: member of each family; the last row is LeNet-5 without augmentation.
MODELS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("Chapter-1 CNN", "simple_cnn", {}, True),
    ("LeNet-5", "lenet5", {"image_size": 28}, True),
    ("AlexNet-mini", "alexnet_mini", {}, True),
    ("VGG-mini", "vgg_mini", {}, True),
    ("LeNet-5, no augmentation", "lenet5", {"image_size": 28}, False),
    ("LeNet-5, ReLU + max-pool", "lenet5", {"image_size": 28, "activation": "relu", "pooling": "max"}, True),
    ("LeNet-5, 20 epochs", "lenet5", {"image_size": 28}, True),
]
#: Models trained for another number of epochs than :data:`EPOCHS` (the schedule stretched to it).
EPOCHS_OVERRIDE = {"LeNet-5, 20 epochs": 20}
#: Not in :data:`MODELS`: this ten-epoch recipe was never run for ``googlenet_mini``; the recipe that
#: trains every family to convergence, GoogLeNet-mini included, is
#: :mod:`convnets.experiments.classic_converged`. Add it to :data:`MODELS` to include it here.
EXTRA_MODELS: list[tuple[str, str, dict[str, Any], bool]] = [("GoogLeNet-mini", "googlenet_mini", {}, True)]
EPOCHS = 10
LR = 2e-3
BATCH_SIZE = 128
SEEDS = (0, 1, 2)
AUGMENT = {"degrees": 10.0, "translate": 0.1, "scale": (0.9, 1.1)}
RECIPE = (f"Adam, batch {BATCH_SIZE}, lr {LR} decaying along a cosine to 0 over {EPOCHS} epochs, "
          f"random affine (rotation up to 10 degrees, shift up to 10 %, zoom 0.9-1.1)")


def _split(quick: bool) -> TensorSplit:
    split = mnist5k()
    if quick:
        small = split.subset(per_class=40)
        split = TensorSplit(small.X_train, small.y_train, split.X_test[:200], split.y_test[:200], split.classes)
    return split


def train_one(label: str, seed: int, quick: bool = False) -> dict[str, Any]:
    """Train the model ``label`` of :data:`MODELS` with seed ``seed``; its curves and timings."""
    (_, name, kwargs, augment), = [m for m in MODELS + EXTRA_MODELS if m[0] == label]
    split = _split(quick)
    epochs = 1 if quick else EPOCHS_OVERRIDE.get(label, EPOCHS)
    seed_everything(seed)
    net = create_model(name, **kwargs)
    train_loader, test_loader = loaders(split, batch_size=BATCH_SIZE, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    aug = digits_batch_augment(**AUGMENT, seed=seed) if augment else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    hist = fit(net, train_loader, test_loader, epochs=epochs, optimizer=opt, scheduler=sched,
               batch_transform=aug, device="cpu", verbose=False, channels_last=True)
    return {"seed": seed, "cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
            "test_acc": hist.val_acc[-1], "train_acc": hist.train_acc[-1], "curves": hist.to_dict()}


def assemble(runs: dict[str, list[dict[str, Any]]], quick: bool = False) -> dict[str, Any]:
    """The results document from ``{label: [train_one(...) per seed]}``."""
    split = _split(quick)
    models: dict[str, Any] = {}
    for label, name, kwargs, augment in MODELS:
        if label not in runs:  # a model left out of this computation
            continue
        rs = sorted(runs[label], key=lambda r: r["seed"])
        epochs = 1 if quick else EPOCHS_OVERRIDE.get(label, EPOCHS)
        net = create_model(name, **kwargs)
        models[label] = {
            "factory": name, "kwargs": kwargs, "augment": augment, "epochs": epochs,
            "params": count_parameters(net), "macs": count_macs(net, (1, 28, 28)),
            "seeds": [r["seed"] for r in rs],
            "test_acc": [r["test_acc"] for r in rs],
            "train_acc": [r["train_acc"] for r in rs],
            "val_acc_curves": [r["curves"]["val_acc"] for r in rs],
            "train_loss_curves": [r["curves"]["train_loss"] for r in rs],
            "wall_s": [r["wall_s"] for r in rs],
            "cpu_s_per_epoch": [r["cpu_s"] / epochs for r in rs],
        }
    return {"recipe": RECIPE, "epochs": 1 if quick else EPOCHS, "lr": LR, "batch_size": BATCH_SIZE,
            "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in AUGMENT.items()},
            "seeds": sorted({r["seed"] for rs in runs.values() for r in rs}),
            "threads": torch.get_num_threads(), "models": models,
            "total_wall_s": sum(r["wall_s"] for rs in runs.values() for r in rs),
            "train_size": len(split.y_train), "test_size": len(split.y_test)}


def run(quick: bool = False) -> dict[str, Any]:
    """Train every model of :data:`MODELS` with every seed of :data:`SEEDS` (one seed in quick
    mode) under :data:`RECIPE`; return per-model accuracies per seed, curves and timings."""
    seeds = SEEDS[:1] if quick else SEEDS
    runs = {label: [train_one(label, s, quick) for s in seeds] for label, *_ in MODELS}
    return assemble(runs, quick)
