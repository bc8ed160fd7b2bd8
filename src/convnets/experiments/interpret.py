"""The two trained networks that the interpretation chapter looks inside.

Explained in the chapter "What convolutional networks learn" (``book/08-interpretation.md``).

- a LeNet-5 (:func:`convnets.models.lenet5`, tanh and average pooling as in the paper) and
- a CIFAR-style ResNet-20 (:func:`convnets.models.resnet_cifar`, width 16, three stages),

both trained on the 4,000 MNIST-5k training digits with Adam, seeded. When the transfer-learning
chapter's source model (``convnets.experiments.source_model``) is there, the chapter uses it as
its ResNet instead, so the two chapters look at the same network.

``run()`` trains both, writes the checkpoints ``results/interpret-lenet.pt`` and
``results/interpret-resnet.pt`` and returns their test accuracies and training times;
:func:`load_models` gives the trained networks (training them first when the checkpoints are
missing).
"""
from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CONFIG", "QUICK_CONFIG", "run", "load_models", "build"]

#: The full experiment (the networks the chapter shows).
CONFIG: dict[str, Any] = {
    "seed": 0,
    "batch_size": 128,
    "lr": 2e-3,
    "lenet_epochs": 8,
    "resnet_depth": 20,
    "resnet_width": 16,
    "resnet_epochs": 5,
    "train_images": 4000,
}

#: The reduced size the tests run (seconds on a CPU).
QUICK_CONFIG: dict[str, Any] = dict(CONFIG, lenet_epochs=1, resnet_depth=8, resnet_width=4, resnet_epochs=1,
                                    train_images=400)

_FILES = {"lenet": "interpret-lenet.pt", "resnet": "interpret-resnet.pt"}


def build(name: str, cfg: dict[str, Any] = CONFIG) -> nn.Module:
    """A fresh (untrained) ``"lenet"`` or ``"resnet"`` as configured in ``cfg``."""
    from convnets.models import lenet5, resnet_cifar

    if name == "lenet":
        return lenet5(in_channels=1, num_classes=10, image_size=28)
    if name == "resnet":
        return resnet_cifar(depth=cfg["resnet_depth"], in_channels=1, num_classes=10, width=cfg["resnet_width"])
    raise ValueError(f"name must be 'lenet' or 'resnet'; got {name!r}")


def _train(name: str, cfg: dict[str, Any], split, path: Path) -> dict[str, float]:
    from convnets.data import loaders
    from convnets.train import fit, save_checkpoint, seed_everything

    seed_everything(cfg["seed"])
    net = build(name, cfg)
    train_loader, test_loader = loaders(split, batch_size=cfg["batch_size"], seed=cfg["seed"])
    t0 = time.perf_counter()
    hist = fit(net, train_loader, test_loader, epochs=cfg[f"{name}_epochs"], lr=cfg["lr"], device="cpu",
               verbose=False)
    seconds = time.perf_counter() - t0
    save_checkpoint(path, net, history=hist, config=cfg, network=name)
    return {"test_acc": float(hist.val_acc[-1]), "train_acc": float(hist.train_acc[-1]),
            "epochs": cfg[f"{name}_epochs"], "seconds": seconds}


def run(quick: bool = False) -> dict[str, Any]:
    """Train the LeNet-5 and the ResNet; save their checkpoints (full size only) and return the
    accuracies and times."""
    from convnets.data import mnist5k
    from convnets.experiments import results_dir

    cfg = QUICK_CONFIG if quick else CONFIG
    split = mnist5k()
    if cfg["train_images"] < len(split.X_train):
        split = split.subset(per_class=cfg["train_images"] // split.num_classes, seed=0)
    out: dict[str, Any] = {"config": cfg, "torch": torch.__version__, "machine": platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if quick else results_dir()
        for name in ("lenet", "resnet"):
            out[name] = _train(name, cfg, split, folder / _FILES[name])
    return out


def _source_model():
    """The transfer-learning chapter's ResNet, when that module is there and its checkpoint is
    on disk (never trained here)."""
    try:
        from convnets.experiments import source_model
    except ImportError:
        return None
    try:
        return source_model.load_source_model(train_if_missing=False)
    except Exception:  # noqa: BLE001 - no checkpoint yet, or another signature: use our own ResNet
        return None


def load_models(train_if_missing: bool = True, prefer_source_model: bool = True) -> dict[str, nn.Module]:
    """``{"lenet": ..., "resnet": ...}``: the trained networks, in eval mode, on the CPU.

    The ResNet is the transfer-learning chapter's source model when ``prefer_source_model`` and
    its checkpoint exist, otherwise this experiment's. Missing checkpoints are trained (and
    saved) when ``train_if_missing``; otherwise a ``FileNotFoundError`` says how to make them.
    """
    from convnets.experiments import results_dir, run_experiment
    from convnets.train import load_checkpoint

    paths = {k: results_dir() / f for k, f in _FILES.items()}
    if any(not p.is_file() for p in paths.values()):
        if not train_if_missing:
            raise FileNotFoundError(f"missing {[str(p) for p in paths.values() if not p.is_file()]}: "
                                    "run `python -m convnets.experiments interpret` first")
        run_experiment("interpret")
    models: dict[str, nn.Module] = {}
    for name, path in paths.items():
        net = build(name)
        load_checkpoint(path, net)
        models[name] = net.eval()
    if prefer_source_model:
        src = _source_model()
        if src is not None:
            models["resnet"] = src.eval()
    return models
