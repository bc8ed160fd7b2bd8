"""The normalization chapter's small-batch study: batch norm whose statistics come from 2, 8 or
32 images, against group norm and layer norm (which use no batch statistics), three seeds each.

Every run takes the same optimisation steps: batches of 32 images, SGD with momentum 0.9, the
same learning rate, decaying to 0 along a cosine, He's initialisation. Only the number of images
that batch norm's statistics are computed over changes (:class:`convnets.norm.GhostBatchNorm2d`):
the setting of Wu & He's group-norm paper, where a batch is spread over 8 GPUs and each GPU
normalizes its own few images. So the measured effect is that of noisy batch statistics alone,
not of smaller steps or fewer of them. For batch norm the test accuracy is also measured with the
statistics of test batches of the same size (train mode).

Explained in the chapter "Normalization" (``book/02-normalization.md``). Run it with
``python -m convnets.experiments normalization_small_batch`` (results in
``results/normalization_small_batch.json``).
"""
from __future__ import annotations

import time
from typing import Any

import torch

from ..norm import batch_stat_accuracy
from .normalization import _quick_split, train_one

__all__ = ["run", "STAT_BATCHES", "EPOCHS", "SEEDS", "LR", "BATCH", "GROUPS"]

#: the number of images batch norm's training statistics are computed over
STAT_BATCHES = (2, 8, 32)
EPOCHS = 3
SEEDS = (0, 1, 2)
LR, BATCH = 0.1, 32
#: group norm's groups per layer (channels 8, 16, 32: groups of 2, 4, 8 channels)
GROUPS = 4


def run(quick: bool = False, seeds: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The whole study (15 three-epoch training runs; see the chapter for its time; ``quick``: seconds).

    Returns ``{"runs": [...], "config": {...}, "seconds": ...}``: one record per (norm,
    statistics batch, seed) (see :func:`convnets.experiments.normalization.train_one`; group and
    layer norm once per seed, ``virtual_batch`` None), batch norm's with ``test_acc_batch_stats``.
    ``seeds``: only these seeds (join parts with :func:`convnets.experiments.normalization.merge`
    and ``list_keys=("runs",)``).
    """
    from ..data import mnist5k

    t0 = time.perf_counter()
    split = mnist5k()
    if quick:
        split = _quick_split(split)
    sizes, epochs, all_seeds = ((4, 32), 1, (0, 1)) if quick else (STAT_BATCHES, EPOCHS, SEEDS)
    seeds = all_seeds if seeds is None else tuple(seeds)
    arms = [("batch", b) for b in sizes] + [("group", None), ("layer", None)]
    runs = []
    for seed in seeds:
        for norm, vb in arms:
            rec, net = train_one(split, norm=norm, init="he", lr=LR, batch_size=BATCH, epochs=epochs,
                                 seed=seed, max_batches=3 if quick else None,
                                 virtual_batch=vb if vb is not None and vb < BATCH else None)
            rec["stat_batch"] = vb
            if norm == "batch" and not rec["diverged"]:
                rec["test_acc_batch_stats"] = batch_stat_accuracy(net, split.X_test, split.y_test, vb,
                                                                  seed=seed)
            runs.append(rec)
            print(f"[small batch] seed {seed} {norm} stats over {vb}: acc {rec['test_acc']} "
                  f"({rec['seconds']:.0f} s, {time.perf_counter() - t0:.0f} s so far)", flush=True)
    config = {"depth": 9, "width": 8, "init": "he", "groups": GROUPS, "stat_batches": list(sizes),
              "epochs": epochs, "seeds": list(seeds), "lr": LR, "batch_size": BATCH,
              "optimizer": "SGD momentum 0.9, cosine decay to 0 per step", "quick": quick,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    return {"runs": runs, "config": config, "seconds": time.perf_counter() - t0}
