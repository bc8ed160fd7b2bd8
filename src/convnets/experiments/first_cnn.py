"""Chapter 1's small CNN trained on MNIST 5k with three seeds, and a learning curve: the same CNN,
and LeNet-5, on 1,000, 2,000 and 4,000 training images.

Used by the chapter "Data and the training loop" (``book/01-data-and-training.md``), sections
"A first CNN" and "Paper vs here". The recipe (:data:`RECIPE`) is the chapter's: Adam, batch 64,
the learning rate decaying along a cosine from 2e-3 to zero, no augmentation. Every training-set
size gets the same number of gradient steps (about 500: 8 epochs of 4,000 images, 16 of 2,000,
32 of 1,000), so that a smaller set is not also a shorter training. The smaller sets are
stratified subsets (:meth:`convnets.data.TensorSplit.subset`, 100 or 200 images per class) drawn
with the run's seed, so the spread over seeds includes the choice of images; the test set is
always the same 1,000 images. Seed 0 of the CNN on 4,000 images is exactly the run the chapter
used to train live (same seed, loaders, schedule).

Two architectures: :func:`convnets.models.simple_cnn` (the chapter's CNN) and
:func:`convnets.models.lenet5` in the paper's form at 28x28 (tanh, average pooling), which tells
how much of a difference between two networks comes from the architecture at a fixed data size.

Run with ``python -m convnets.experiments first_cnn`` (the chapter prints the CPU time it took);
``quick=True`` (the tests) trains one epoch on 20 images per class for one seed and tests on 200.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from convnets.data import TensorSplit, loaders, mnist5k
from convnets.models import create_model
from convnets.train import fit, predict, seed_everything
from convnets.utils import count_parameters

#: (label, registered factory, keyword arguments)
MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("CNN", "simple_cnn", {}),
    ("LeNet-5", "lenet5", {"image_size": 28}),
]
#: training images per class (10 classes): 1,000, 2,000 and 4,000 images
PER_CLASS = (100, 200, 400)
#: epochs at the full 4,000 images; a set k times smaller trains k times as many epochs
EPOCHS_FULL = 8
FULL_PER_CLASS = 400
LR = 2e-3
BATCH_SIZE = 64
SEEDS = (0, 1, 2)
RECIPE = (f"Adam, batch {BATCH_SIZE}, lr {LR} decaying along a cosine to 0, no augmentation; "
          f"{EPOCHS_FULL} epochs at 4,000 images and the same number of steps at smaller sizes")


def epochs_for(per_class: int) -> int:
    """Epochs that give ``per_class`` images per class the steps of :data:`EPOCHS_FULL` epochs
    over the full set."""
    return EPOCHS_FULL * FULL_PER_CLASS // per_class


def _split(per_class: int, seed: int, quick: bool) -> TensorSplit:
    split = mnist5k()
    if quick:
        small = split.subset(per_class=20, seed=seed)
        return TensorSplit(small.X_train, small.y_train, split.X_test[:200], split.y_test[:200], split.classes)
    if per_class == FULL_PER_CLASS:
        return split  # all 4,000 (the subset would be the same images, in another order)
    return split.subset(per_class=per_class, seed=seed)


def train_one(label: str, per_class: int, seed: int, quick: bool = False) -> dict[str, Any]:
    """Train model ``label`` on ``per_class`` images per class with ``seed``: accuracies, curves,
    timings and the test-set predictions."""
    (_, name, kwargs), = [m for m in MODELS if m[0] == label]
    split = _split(per_class, seed, quick)
    epochs = 1 if quick else epochs_for(per_class)
    seed_everything(seed)
    net = create_model(name, **kwargs)
    train_loader, test_loader = loaders(split, batch_size=BATCH_SIZE, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    hist = fit(net, train_loader, test_loader, epochs=epochs, optimizer=opt, scheduler=sched,
               device="cpu", verbose=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    pred = predict(net, split.X_test, device="cpu").argmax(1)
    return {"model": label, "per_class": per_class, "train_size": len(split.y_train), "seed": seed,
            "epochs": epochs, "steps": epochs * len(train_loader),
            "cpu_s": cpu, "wall_s": wall,
            "test_acc": hist.val_acc[-1], "train_acc": hist.train_acc[-1],
            "curves": hist.to_dict(), "test_pred": pred.tolist()}


def run(quick: bool = False) -> dict[str, Any]:
    """Every model of :data:`MODELS` at every size of :data:`PER_CLASS` with every seed of
    :data:`SEEDS` (quick: one seed, one size, one epoch)."""
    seeds = SEEDS[:1] if quick else SEEDS
    sizes = PER_CLASS[-1:] if quick else PER_CLASS
    t0 = time.perf_counter()
    runs = [train_one(label, n, s, quick) for label, *_ in MODELS for n in sizes for s in seeds]
    split = mnist5k()
    return {
        "recipe": RECIPE, "lr": LR, "batch_size": BATCH_SIZE, "epochs_full": EPOCHS_FULL,
        "seeds": list(seeds), "per_class": list(sizes), "quick": quick,
        "params": {label: count_parameters(create_model(name, **kw)) for label, name, kw in MODELS},
        "test_size": 200 if quick else len(split.y_test),
        "test_labels": (split.y_test[:200] if quick else split.y_test).tolist(),
        "threads": torch.get_num_threads(), "total_wall_s": time.perf_counter() - t0,
        "total_cpu_s": sum(r["cpu_s"] for r in runs),
        "runs": runs,
    }
