"""The normalization chapter's training experiment: a deep plain CNN without normalization, with
batch norm and with layer norm, over several learning rates; and batch norm with small batches.

Explained in the chapter "Normalization" (``book/02-normalization.md``). Run it with
``python -m convnets.experiments normalization`` (results in ``results/normalization.json``).
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ..models._base import ConvNet
from ..norm import norm_layer

__all__ = ["PlainDeepCNN", "plain_deep_cnn", "train_one", "run", "NORMS", "LRS", "BATCH_SIZES",
           "EPOCHS", "BASE_BATCH", "BASE_LR"]

#: normalizations compared and learning rates (SGD, momentum 0.9, batch 64) in the sweep
NORMS = ("none", "batch", "layer")
LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
EPOCHS = 4
#: the small-batch study: batch sizes, with the learning rate scaled linearly from BASE_LR at
#: BASE_BATCH (so every run takes the same total step per example), batch norm vs layer norm
BATCH_SIZES = (2, 4, 8, 32)
BASE_BATCH, BASE_LR, BATCH_EPOCHS = 32, 0.05, 2


class PlainDeepCNN(ConvNet):
    """A VGG-like plain CNN for ``(N, 1, 28, 28)``: ``depth`` 3x3 convs in three stages
    (28x28, 14x14, 7x7; widths ``w, 2w, 4w``; 2x2 max pooling between), each conv followed by
    a normalization layer (``norm``: ``"none"``, ``"batch"``, ``"layer"``, ``"layer_scalar"``,
    see :func:`convnets.norm.norm_layer`) and ReLU; then global average pooling and a linear
    classifier. No skip connections: the kind of net that is hard to train without normalization.

    The conv before a normalization layer has no bias (the norm's beta plays its role).
    """

    classifier_name = "fc"

    def __init__(self, depth: int = 9, width: int = 8, norm: str = "none", num_classes: int = 10,
                 in_channels: int = 1, image_size: int = 28, impl: str = "convnets"):
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be at least 3 (one conv per stage); got {depth}")
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2x2 poolings); got {image_size}")
        per_stage = [depth // 3 + (1 if i < depth % 3 else 0) for i in range(3)]
        layers: list[nn.Module] = []
        c_in, size = in_channels, image_size
        for stage, n in enumerate(per_stage):
            c_out = width * 2**stage
            if stage:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"),
                           norm_layer(norm, c_out, (size, size), impl=impl), nn.ReLU(inplace=True)]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.norm = norm
        self.num_features = c_in
        self.num_classes = num_classes
        self.fc = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, 28, 28)`` -> ``(N, 4w, 7, 7)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


def plain_deep_cnn(depth: int = 9, width: int = 8, norm: str = "none", **kwargs) -> PlainDeepCNN:
    """The normalization chapter's deep plain CNN (see :class:`PlainDeepCNN`)."""
    return PlainDeepCNN(depth=depth, width=width, norm=norm, **kwargs)


def _clean(v: float) -> float | None:
    """JSON has no NaN: a diverged run's NaN loss is stored as None."""
    return None if v != v or v in (float("inf"), float("-inf")) else float(v)


@torch.no_grad()
def batch_stat_accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int,
                        shuffle: bool = True, seed: int = 0) -> float:
    """Test accuracy when batch norm normalizes with the statistics of each test batch of
    ``batch_size`` (train mode) instead of its running statistics: what a forgotten
    ``model.eval()`` does. Runs on a copy, so the model's running statistics are untouched.

    ``shuffle`` (seeded) puts the images in random order first: MNIST 5k's test set is sorted
    by label, and consecutive batches would each hold one digit. ``shuffle=False`` keeps the order.
    """
    import copy

    if shuffle:
        perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        X, y = X[perm], y[perm]
    twin = copy.deepcopy(net).train()
    correct = 0
    for i in range(0, len(X) - batch_size + 1, batch_size):  # full batches only
        correct += int((twin(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / (len(X) // batch_size * batch_size)


def train_one(split, norm: str, lr: float, batch_size: int = 64, epochs: int = EPOCHS, depth: int = 9,
              width: int = 8, seed: int = 0, max_batches: int | None = None) -> tuple[dict[str, Any], nn.Module]:
    """Train one :class:`PlainDeepCNN` on ``split`` with SGD (momentum 0.9) and return
    ``(record, net)``: the record holds the history (per epoch), the final test accuracy in eval
    mode, whether the loss diverged (NaN), and the wall time. ``max_batches`` trains on only
    that many batches per epoch (for quick tests)."""
    from ..data import loaders
    from ..train import fit, seed_everything

    seed_everything(seed)
    net = plain_deep_cnn(depth, width, norm)
    train_loader, test_loader = loaders(split, batch_size=batch_size, seed=seed)
    if max_batches is not None:
        train_loader = [b for _, b in zip(range(max_batches), train_loader)]
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    t0 = time.perf_counter()
    h = fit(net, train_loader, test_loader, epochs=epochs, optimizer=opt, device="cpu", verbose=False).to_dict()
    h = {k: [_clean(v) for v in vals] for k, vals in h.items()}
    diverged = any(v is None for v in h["train_loss"]) or any(v is None for v in h["val_loss"])
    record = {"norm": norm, "lr": lr, "batch_size": batch_size, "epochs": epochs, "history": h,
              "test_acc": h["val_acc"][-1], "diverged": diverged, "seconds": time.perf_counter() - t0}
    return record, net


def run(quick: bool = False) -> dict[str, Any]:
    """The whole experiment (a few minutes on an idle 2-core CPU; ``quick``: a few seconds).

    Returns ``{"sweep": [...], "batch_sizes": [...], "config": {...}, "seconds": ...}``: one
    record per (norm, lr) run of the sweep, and one per (norm, batch size) run of the small-batch
    study, the latter with ``test_acc_batch_stats`` (test accuracy normalizing with the
    statistics of test batches of the same size, as a forgotten ``model.eval()`` would).
    """
    from ..data import mnist5k

    t0 = time.perf_counter()
    split = mnist5k()
    if quick:  # a sliver of the data: checks the code paths, not the findings
        from ..data import TensorSplit

        split = TensorSplit(split.X_train[:512], split.y_train[:512], split.X_test[:128],
                            split.y_test[:128], split.classes)
    norms, lrs, epochs = (NORMS, (0.1,), 1) if quick else (NORMS, LRS, EPOCHS)
    sizes, b_epochs = ((4,), 1) if quick else (BATCH_SIZES, BATCH_EPOCHS)
    max_batches = 3 if quick else None
    sweep = []
    for norm in norms:
        for lr in lrs:
            rec, _ = train_one(split, norm, lr, batch_size=64, epochs=epochs, max_batches=max_batches)
            sweep.append(rec)
    small = []
    for norm in ("batch", "layer"):
        for b in sizes:
            lr = BASE_LR * b / BASE_BATCH
            rec, net = train_one(split, norm, lr, batch_size=b, epochs=b_epochs,
                                 max_batches=3 if quick else None)
            net.eval()
            rec["test_acc_batch_stats"] = (batch_stat_accuracy(net, split.X_test, split.y_test, b)
                                           if norm == "batch" else rec["test_acc"])
            small.append(rec)
    config = {"depth": 9, "width": 8, "optimizer": "SGD momentum 0.9", "sweep_batch_size": 64,
              "sweep_epochs": epochs, "lrs": list(lrs), "norms": list(norms), "batch_sizes": list(sizes),
              "batch_epochs": b_epochs, "base_lr": BASE_LR, "base_batch": BASE_BATCH, "quick": quick,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    return {"sweep": sweep, "batch_sizes": small, "config": config, "seconds": time.perf_counter() - t0}
