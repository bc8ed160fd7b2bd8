"""Each classic family trained to convergence on MNIST 5k with one recipe, three seeds, beside
chapter 1's two-layer CNN trained the same way.

Used by the chapter "Classic architectures" (``book/05-classic-architectures.md``), section
"Each family on MNIST 5k". The ten-epoch recipe of :mod:`convnets.experiments.classic_mnist`
leaves the small networks under-trained (LeNet-5 gains three points from ten to twenty epochs
there); this one trains each model until its test accuracy has stopped moving. The recipe
(:data:`RECIPE`), the same for every model:

- inputs standardised with MNIST's mean and standard deviation (0.1307, 0.3081), as LeNet's
  paper normalised its inputs to a mean near 0 and a variance near 1 (Sec. II.B);
- AdamW (weight decay :data:`WEIGHT_DECAY`), batch :data:`BATCH_SIZE`, the one-cycle learning-rate
  schedule (:class:`torch.optim.lr_scheduler.OneCycleLR`, stepped after every batch): a rise to
  :data:`LR` over the first 30 % of the steps, then a cosine decay to almost zero, over
  :data:`EPOCHS` epochs;
- a random affine move of every training digit, anew every epoch (rotation up to 10 degrees,
  shift up to 10 % of the side, zoom 0.9-1.1: :func:`convnets.augment.digits_batch_augment`,
  the chapter's augmentation), applied before the standardisation.

Test: the fixed 1,000 test digits of :func:`convnets.data.mnist5k`. Each run records its CPU time
(``time.process_time``, one thread).

Run with ``python -m convnets.experiments classic_converged`` (every model, three seeds, and
LeNet-5 again over :data:`LONGER_EPOCHS` epochs: about 45 CPU-minutes of training on one idle
core, nearly half of it GoogLeNet-mini); ``run(labels=[...])`` trains some of them. The results
cached in this revision hold all of it; the chapter's table says which models have been trained.
``quick=True`` (the tests) trains one epoch on a tenth of the training images (two for the longer
schedule), one seed, and tests on 200.
"""
from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from convnets.augment import digits_batch_augment
from convnets.data import TensorSplit, loaders
from convnets.experiments.classic_mnist import _split
from convnets.flops import count_macs
from convnets.models import create_model
from convnets.train import fit, seed_everything
from convnets.utils import count_parameters

#: (label, registered factory, keyword arguments): chapter 1's CNN, then the 28x28 member of
#: each family (LeNet-5 as published: tanh and average pooling).
MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("Chapter-1 CNN", "simple_cnn", {}),
    ("LeNet-5", "lenet5", {"image_size": 28}),
    ("AlexNet-mini", "alexnet_mini", {}),
    ("VGG-mini", "vgg_mini", {}),
    ("GoogLeNet-mini", "googlenet_mini", {}),
]
EPOCHS = 40
LR = 3e-3
WEIGHT_DECAY = 5e-4
BATCH_SIZE = 64
SEEDS = (0, 1, 2)
#: The model trained again over a schedule three times as long (the same recipe otherwise), to
#: see whether :data:`EPOCHS` epochs left it short.
LONGER_LABEL, LONGER_EPOCHS = "LeNet-5", 120
MEAN, STD = 0.1307, 0.3081
AUGMENT = {"degrees": 10.0, "translate": 0.1, "scale": (0.9, 1.1)}
RECIPE = (f"inputs standardised; AdamW (weight decay {WEIGHT_DECAY}), batch {BATCH_SIZE}, one-cycle learning rate "
          f"peaking at {LR}, {EPOCHS} epochs; random affine (rotation up to 10 degrees, shift up to 10 %, "
          f"zoom 0.9-1.1)")


class StepwiseSchedule:
    """An optimizer whose every step also advances a per-step learning-rate schedule
    (:func:`convnets.train.fit` steps its ``scheduler`` once per epoch; one-cycle is per step)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any):
        self.optimizer, self.scheduler = optimizer, scheduler

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.optimizer.step()
        if self.scheduler.last_epoch + 1 < self.scheduler.total_steps:
            self.scheduler.step()


def standardise(X: torch.Tensor) -> torch.Tensor:
    """``(X - 0.1307) / 0.3081``: MNIST's pixel mean and standard deviation."""
    return (X - MEAN) / STD


def train_one(label: str, seed: int, quick: bool = False, epochs: int | None = None) -> dict[str, Any]:
    """Train the model ``label`` of :data:`MODELS` with seed ``seed`` under :data:`RECIPE`; its
    final train (augmented batches) and test accuracy, test curve and CPU seconds."""
    (_, name, kwargs), = [m for m in MODELS if m[0] == label]
    split = _split(quick)
    epochs = epochs or (1 if quick else EPOCHS)
    test_split = TensorSplit(split.X_train[:1], split.y_train[:1], standardise(split.X_test), split.y_test,
                             split.classes)
    seed_everything(seed)
    net = create_model(name, **kwargs)
    train_loader, _ = loaders(split, batch_size=BATCH_SIZE, seed=seed)
    _, test_loader = loaders(test_split, seed=seed)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=epochs * len(train_loader))
    aug = digits_batch_augment(**AUGMENT, seed=seed)

    def transform(X: torch.Tensor, y: torch.Tensor):
        X, y = aug(X, y)
        return standardise(X), y

    cpu0, wall0 = time.process_time(), time.perf_counter()
    hist = fit(net, train_loader, test_loader, epochs=epochs, optimizer=StepwiseSchedule(opt, sched),
               batch_transform=transform, device="cpu", verbose=False, channels_last=True)
    return {"seed": seed, "cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
            "test_acc": hist.val_acc[-1], "train_acc": hist.train_acc[-1], "val_acc": hist.val_acc,
            "train_loss": hist.train_loss}


def step_costs(repeats: int = 4, batch: int = BATCH_SIZE) -> dict[str, float]:
    """CPU seconds of one training step (forward, backward, AdamW step) on a batch of ``batch``
    random 28x28 images, per model of :data:`MODELS`: the median of ``repeats - 1`` timed steps
    after a warm-up, one thread. What an epoch costs is this times the steps per epoch."""
    out: dict[str, float] = {}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=gen)
    for label, name, kwargs in MODELS:
        torch.manual_seed(0)
        net = create_model(name, **kwargs).to(memory_format=torch.channels_last).train()
        opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            outputs = net(x)
            logits, aux = (outputs, ()) if isinstance(outputs, torch.Tensor) else (outputs[0], outputs[1:])
            loss = torch.nn.functional.cross_entropy(logits, y)
            for a in aux:
                loss = loss + 0.3 * torch.nn.functional.cross_entropy(a, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.process_time() - t0)
        out[label] = statistics.median(times[1:])
    return out


def assemble(runs: dict[str, list[dict[str, Any]]], quick: bool = False,
             costs: dict[str, float] | None = None) -> dict[str, Any]:
    """The results document from ``{label: [train_one(...) per seed]}``, with the CPU cost of one
    training step of every model of :data:`MODELS` (``costs``, measured by :func:`step_costs` when
    not given), trained or not."""
    split = _split(quick)
    models: dict[str, Any] = {}
    for label, name, kwargs in MODELS:
        if label not in runs:
            continue
        rs = sorted(runs[label], key=lambda r: r["seed"])
        net = create_model(name, **kwargs)
        models[label] = {
            "factory": name, "kwargs": kwargs, "params": count_parameters(net),
            "macs": count_macs(net.eval(), (1, 28, 28)), "epochs": len(rs[0]["val_acc"]),
            "seeds": [r["seed"] for r in rs],
            "test_acc": [r["test_acc"] for r in rs], "train_acc": [r["train_acc"] for r in rs],
            "val_acc_curves": [r["val_acc"] for r in rs], "train_loss_curves": [r["train_loss"] for r in rs],
            "cpu_s": [r["cpu_s"] for r in rs], "wall_s": [r["wall_s"] for r in rs],
        }
    return {"recipe": RECIPE, "epochs": 1 if quick else EPOCHS, "lr": LR, "weight_decay": WEIGHT_DECAY,
            "batch_size": BATCH_SIZE, "mean_std": [MEAN, STD],
            "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in AUGMENT.items()},
            "threads": torch.get_num_threads(), "models": models,
            "total_cpu_s": sum(r["cpu_s"] for rs in runs.values() for r in rs),
            "train_size": len(split.y_train), "test_size": len(split.y_test),
            "steps_per_epoch": -(-len(split.y_train) // BATCH_SIZE),
            "params_all": {label: count_parameters(create_model(name, **kw)) for label, name, kw in MODELS},
            "macs_all": {label: count_macs(create_model(name, **kw).eval(), (1, 28, 28)) for label, name, kw in MODELS},
            "cpu_s_per_step": costs if costs is not None else step_costs(repeats=2 if quick else 4)}


def run_longer(quick: bool = False, epochs: int = LONGER_EPOCHS) -> dict[str, Any]:
    """:data:`LONGER_LABEL` trained with every seed of :data:`SEEDS` under :data:`RECIPE` but over
    ``epochs`` epochs (two in quick mode, one seed): its test and final train accuracy, test
    curve and CPU seconds per seed."""
    epochs = 2 if quick else epochs
    rs = [train_one(LONGER_LABEL, s, quick, epochs=epochs) for s in (SEEDS[:1] if quick else SEEDS)]
    return {"label": LONGER_LABEL, "epochs": epochs, "seeds": [r["seed"] for r in rs],
            "test_acc": [r["test_acc"] for r in rs], "train_acc": [r["train_acc"] for r in rs],
            "val_acc_curves": [r["val_acc"] for r in rs], "cpu_s": [r["cpu_s"] for r in rs]}


def run(quick: bool = False, labels: list[str] | None = None) -> dict[str, Any]:
    """Train the models ``labels`` (default: every model of :data:`MODELS`) with every seed of
    :data:`SEEDS` (one seed in quick mode) under :data:`RECIPE`, and :data:`LONGER_LABEL` over the
    longer schedule when it is among them."""
    runs = {}
    for label, *_ in MODELS:
        if labels is None or label in labels:
            runs[label] = [train_one(label, s, quick) for s in (SEEDS[:1] if quick else SEEDS)]
    doc = assemble(runs, quick)
    if LONGER_LABEL in runs:
        doc["longer"] = run_longer(quick)
        doc["total_cpu_s"] += sum(doc["longer"]["cpu_s"])
    return doc
