"""The book's source model for transfer learning and interpretation: a small CIFAR-style ResNet
(:func:`convnets.models.resnet_cifar`) trained by this seeded script on MNIST 5k.

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

    >>> net = load_source_model()          # reads results/source-model.pt, or trains it  # doctest: +SKIP

``python -m convnets.experiments source_model`` retrains it from scratch and overwrites the
checkpoint (and writes ``results/source_model.json`` with its accuracy and history). The
checkpoint (about 0.3 MB) stores the configuration and the test accuracy in its ``meta``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from . import results_dir

__all__ = ["SOURCE_CONFIG", "CHECKPOINT_NAME", "build_source_model", "train_source_model",
           "load_source_model", "source_checkpoint_path", "run"]

#: Everything that defines the source model: change one and every figure built on it changes.
SOURCE_CONFIG: dict[str, Any] = {
    "depth": 8,          # 6n + 2 with n = 1: conv1, one basic block per stage, fc
    "width": 16,         # channels 16 / 32 / 64 in layer1 / layer2 / layer3
    "epochs": 10,
    "batch_size": 64,
    "lr": 2e-3,          # Adam, cosine-annealed to zero over the epochs
    "weight_decay": 1e-4,
    "seed": 0,
}

CHECKPOINT_NAME = "source-model.pt"


def source_checkpoint_path() -> Path:
    """``results/source-model.pt`` (or under ``$CONVNETS_RESULTS``)."""
    return results_dir() / CHECKPOINT_NAME


def build_source_model(num_classes: int = 10) -> torch.nn.Module:
    """An untrained network of the source model's architecture: ``(N, 1, 28, 28)`` -> ``(N, num_classes)``."""
    from ..models import resnet_cifar

    return resnet_cifar(depth=SOURCE_CONFIG["depth"], in_channels=1, num_classes=num_classes,
                        width=SOURCE_CONFIG["width"])


def train_source_model(epochs: int | None = None, device: str | None = "cpu", verbose: bool = False):
    """Train the source model on MNIST 5k's 4,000 training images with :data:`SOURCE_CONFIG`.

    Returns ``(model, info)`` where ``info`` has the test accuracy on the 1,000 held-out images,
    the history and the seconds it took. Seeded: the same on every run on the same machine.
    """
    from ..data import loaders, mnist5k
    from ..train import evaluate, fit, seed_everything

    cfg = dict(SOURCE_CONFIG)
    if epochs is not None:
        cfg["epochs"] = epochs
    seed_everything(cfg["seed"])
    split = mnist5k()
    train_loader, test_loader = loaders(split, batch_size=cfg["batch_size"], seed=cfg["seed"])
    model = build_source_model()
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg["epochs"], 1))
    t0 = time.perf_counter()
    history = fit(model, train_loader, None, epochs=cfg["epochs"], optimizer=opt, scheduler=sched,
                  device=device, verbose=verbose)
    seconds = time.perf_counter() - t0
    test = evaluate(model, test_loader)
    model.cpu().eval()
    info = {"config": cfg, "test_acc": test["acc"], "test_loss": test["loss"], "seconds": seconds,
            "history": history.to_dict(), "torch": str(torch.__version__)}
    return model, info


def source_for(quick: bool) -> torch.nn.Module:
    """The source model for an experiment: the saved one (trained when missing), or in a quick
    run the saved one when present and else an untrained network of its architecture."""
    if not quick:
        return load_source_model()
    try:
        return load_source_model(train_if_missing=False)
    except FileNotFoundError:
        return build_source_model().eval()


def load_source_model(train_if_missing: bool = True, path: str | Path | None = None) -> torch.nn.Module:
    """The pretrained source model, on the CPU, in eval mode.

    Reads ``results/source-model.pt``; when it is missing, trains the model (about a minute on
    an idle 2-core CPU) and saves it there if ``train_if_missing``, else raises
    :class:`FileNotFoundError`. The checkpoint's ``meta`` (config, test accuracy) is attached
    to the model as ``model.source_meta``.
    """
    from ..train import load_checkpoint, save_checkpoint

    path = Path(path) if path is not None else source_checkpoint_path()
    model = build_source_model()
    if path.is_file():
        state = load_checkpoint(path, model)
        model.source_meta = state.get("meta", {})
        return model.eval()
    if not train_if_missing:
        raise FileNotFoundError(
            f"no source model at {path}: run `python -m convnets.experiments source_model` "
            "or call load_source_model(train_if_missing=True)"
        )
    model, info = train_source_model()
    meta = {k: info[k] for k in ("config", "test_acc", "test_loss", "seconds", "torch")}
    save_checkpoint(path, model, **meta)
    model.source_meta = meta
    return model.eval()


def run(quick: bool = False) -> dict:
    """Train the source model; the full run saves ``results/source-model.pt``. ``quick``: 1 epoch,
    nothing saved (for the tests)."""
    from ..train import save_checkpoint

    model, info = train_source_model(epochs=1 if quick else None)
    if not quick:
        meta = {k: info[k] for k in ("config", "test_acc", "test_loss", "seconds", "torch")}
        save_checkpoint(source_checkpoint_path(), model, **meta)
    return info
