"""Augmentation on small data: the same CNN on 500, 1,000 and 4,000 MNIST-5k digits, with and
without augmentation (and with a label-breaking one), for the chapter "Data augmentation"
(``book/04-augmentation.md``).

Every run sees the same number of training images (``budget`` presentations: more epochs for
smaller sets), so that the arms differ only in what the images look like. Curves record the
loss and accuracy on the *clean* training images and on the 1,000 test images at evenly spaced
points. The seed-0 models trained on 1,000 images (plain and augmented) are saved as small
checkpoints for the chapter's test-time augmentation section.

Run: ``python -m convnets.experiments augmentation`` (writes ``results/augmentation.json``).
"""
from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
from torch import nn

from ..augment import BatchAugment, digits_batch_augment, random_affine, random_hflip
from ..data import loaders, mnist5k
from ..models.simple import SimpleCNN
from ..train import evaluate, fit, save_checkpoint, seed_everything
from ..utils import get_device
from . import results_dir

#: The CNN every run trains (SimpleCNN, narrow): about 106k parameters.
MODEL_KW = {"width": 16, "hidden": 64}
#: Training-set sizes (images, 10 classes balanced).
SIZES = (500, 1000, 4000)
#: Size on which the label-breaking arm runs.
WRONG_SIZE = 1000


def make_model() -> nn.Module:
    """The CNN of the experiment, freshly initialised (seed it first)."""
    return SimpleCNN(**MODEL_KW)


def wrong_augment(seed: int = 0) -> BatchAugment:
    """A label-*breaking* augmentation for digits: any rotation (±180°) and left-right flips."""
    return BatchAugment(
        [lambda X, g: random_affine(X, degrees=180.0, translate=0.0, scale=(1.0, 1.0), generator=g),
         lambda X, g: random_hflip(X, 0.5, g)],
        seed=seed, names=["random_affine(180°)", "random_hflip(0.5)"],
    )


def augmentations(seed: int) -> dict[str, BatchAugment | None]:
    """The arms: none, the digit augmentation (affine ±10°, ±10 %, ×0.9-1.1; cutout 8 px), wrong."""
    return {"none": None, "augmented": digits_batch_augment(cutout_size=8, seed=seed),
            "wrong": wrong_augment(seed)}


def _confusion(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> list[list[int]]:
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(1)
    cm = torch.zeros(10, 10, dtype=torch.int64)
    cm.index_put_((y.cpu(), pred.cpu()), torch.ones(len(y), dtype=torch.int64), accumulate=True)
    return cm.tolist()


def train_one(n: int, arm: str, seed: int, budget: int, points: int, batch_size: int = 64,
              lr: float = 1e-3, device: str | None = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Train the CNN on ``n`` images with augmentation ``arm`` for ``budget`` image presentations.

    Returns the model and a record with the curves (``images_seen``, clean ``train_loss`` /
    ``train_acc``, ``test_loss`` / ``test_acc``), the final accuracies, the test confusion matrix
    and the training time.
    """
    split = mnist5k().subset(n // 10, seed=seed)
    seed_everything(seed)
    dev = get_device(device)
    net = make_model()
    aug = augmentations(seed)[arm]
    train_loader, test_loader = loaders(split, batch_size=batch_size, seed=seed)
    clean_train, _ = loaders(split, batch_size=1000, seed=seed)
    epochs = max(1, math.ceil(budget / n))
    chunk = max(1, epochs // points)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    curve: dict[str, list[float]] = {k: [] for k in ("epoch", "images_seen", "train_loss", "train_acc", "test_loss", "test_acc")}
    t0 = time.perf_counter()
    done = 0
    while done < epochs:
        k = min(chunk, epochs - done)
        fit(net, train_loader, None, epochs=k, optimizer=opt, verbose=False, batch_transform=aug, device=dev)
        done += k
        tr = evaluate(net, clean_train)
        te = evaluate(net, test_loader)
        curve["epoch"].append(done)
        curve["images_seen"].append(done * n)
        curve["train_loss"].append(tr["loss"])
        curve["train_acc"].append(tr["acc"])
        curve["test_loss"].append(te["loss"])
        curve["test_acc"].append(te["acc"])
    seconds = time.perf_counter() - t0
    record = {"n": n, "arm": arm, "seed": seed, "epochs": epochs, "curve": curve,
              "train_acc": curve["train_acc"][-1], "test_acc": curve["test_acc"][-1],
              "best_test_acc": max(curve["test_acc"]),
              "confusion": _confusion(net, split.X_test.to(dev), split.y_test.to(dev)),
              "seconds": seconds, "device": str(dev)}
    return net, record


def _job(args: tuple[int, str, int, int, int, bool]) -> dict[str, Any]:
    n, arm, seed, budget, points, save = args
    torch.set_num_threads(int(os.environ.get("CONVNETS_THREADS", torch.get_num_threads())))
    net, rec = train_one(n, arm, seed, budget, points)
    rec["torch"] = torch.__version__
    if save:
        save_checkpoint(results_dir() / f"augmentation_{arm}_n{n}.pt", net.cpu(),
                        model_kw=MODEL_KW, n=n, arm=arm, seed=seed)
    return rec


def run(quick: bool = False, seeds: tuple[int, ...] | None = None) -> dict[str, Any]:
    """All runs on the CPU: sizes x arms x 3 seeds, each seeing 48,000 images.

    ``quick`` trains 100 images with each arm, one seed, a tiny budget (for the tests).
    ``CONVNETS_WORKERS=k`` runs the independent trainings in ``k`` processes (on a machine
    with cores to spare; each gets ``CONVNETS_THREADS`` threads). The committed results: seeds 0
    and 1 in 14 single-thread processes on a 16-core CPU (each training 24-37 s on one core),
    seed 2 added later with :func:`merge`, 7 single-thread processes on a shared 2-core CPU
    (277 s of CPU time in all); ``recomputed_as`` in the results file says so. ``seeds`` replaces the default seeds
    (to add a seed to saved results with :func:`merge`).
    """
    sizes = (100,) if quick else SIZES
    wrong_size = 100 if quick else WRONG_SIZE
    seeds = tuple(seeds) if seeds is not None else (0,) if quick else (0, 1, 2)
    t_start = time.perf_counter()
    budget = 100 if quick else 48_000
    points = 1 if quick else 12
    jobs = []
    for seed in seeds:
        for n in sizes:
            for arm in ["none", "augmented"] + (["wrong"] if n == wrong_size else []):
                save = not quick and seed == 0 and n == WRONG_SIZE and arm != "wrong"
                jobs.append((n, arm, seed, budget, points, save))
    workers = int(os.environ.get("CONVNETS_WORKERS", "1"))
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
            runs = list(ex.map(_job, jobs))
    else:
        runs = [_job(j) for j in jobs]
    return {
        "model": "SimpleCNN", "model_kw": MODEL_KW, "sizes": list(sizes), "seeds": list(seeds),
        "budget_images": budget, "batch_size": 64, "lr": 1e-3, "optimizer": "Adam",
        "augmented": repr(augmentations(0)["augmented"]), "wrong": repr(augmentations(0)["wrong"]),
        "torch": torch.__version__, "runs": runs, "wall_seconds": time.perf_counter() - t_start,
    }


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Saved results ``old`` with the runs of ``new`` (other seeds, same protocol) added; each
    run keeps its own ``torch`` version (absent: ``old["torch"]``)."""
    out = dict(old)
    for r in old["runs"]:
        r.setdefault("torch", old["torch"])
    out["runs"] = old["runs"] + new["runs"]
    out["seeds"] = sorted(set(old["seeds"]) | set(new["seeds"]))
    out["torch"] = sorted({r["torch"] for r in out["runs"]})
    return out
