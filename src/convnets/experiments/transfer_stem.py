"""How far does fine-tuning move each stage of the source model when every stage gets the SAME
learning rate? And does the source's first layer (the stem) serve the target as it is?

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

The source model (:func:`convnets.experiments.source_model.load_source_model`, MNIST 5k) is
fine-tuned on the UCI digits (28x28, 5 labels per class) and on the same digits with inverted
contrast, by Adam for :data:`STEPS` steps, in these arms, each over :data:`SEEDS` (the runs are
independent and spread over :data:`WORKERS` single-threaded processes):

- ``one_lr``: every stage trained at one learning rate (``decay=1``);
- ``frozen_stem``: one learning rate, the stem (``conv1+bn1``) frozen at the source's weights;
- ``scratch``: the same architecture from random weights, one learning rate: how far each stage
  moves from its initialisation when it has to be learned (the scale against which the
  fine-tuned changes are read: Adam's steps are about the same size for every weight, so a
  stage with small weights changes more *relatively* whatever it learns).

For each run: the test accuracy and, for every stage but the head, the relative change of its
convolution kernels ``||K - K_0|| / ||K_0||``.
``python -m convnets.experiments transfer_stem`` writes ``results/transfer_stem.json``.
"""
from __future__ import annotations

import time

import torch

__all__ = ["SEEDS", "STEPS", "PER_CLASS", "ARMS", "TASK_ARMS", "WORKERS", "run"]

SEEDS = [0, 1, 2]
STEPS = 100
PER_CLASS = 5
LR = 2e-3
#: arm -> (start from the source?, learning-rate decay per stage, stage frozen up to)
ARMS = {"one_lr": (True, 1.0, None), "frozen_stem": (True, 1.0, "conv1+bn1"), "scratch": (False, 1.0, None)}
#: which arms run on which target (the inverted one only where it answers a question)
TASK_ARMS = {"digits": ["one_lr", "frozen_stem", "scratch"], "inverted": ["one_lr"]}
WORKERS = 3


def _one(job: tuple) -> tuple:
    """One (task, arm, seed) run: test accuracy and the relative change of each stage."""
    task, arm, seed, steps, quick = job
    torch.set_num_threads(1)
    from ..data import digits
    from .source_model import source_for
    from .transfer_distance import invert, relative_change, train_on

    source = source_for(quick)
    source_state = {k: v.clone() for k, v in source.state_dict().items()}
    split = digits(size=28).subset(PER_CLASS, seed)
    if task == "inverted":
        split = invert(split)
    from_source, decay, until = ARMS[arm]
    model, a, before = train_on(split, seed, steps, init_state=source_state if from_source else None,
                                lr=LR, decay=decay, freeze_until=until)
    return task, arm, seed, a, relative_change(model, before)


def run(quick: bool = False) -> dict:
    """Every (task, arm, seed) run. ``quick``: 1 seed, 5 steps, no worker processes (for the tests)."""
    from concurrent.futures import ProcessPoolExecutor

    from ..data import digits
    from .transfer_distance import _stat

    t_start = time.perf_counter()
    seeds = [0] if quick else SEEDS
    steps = 5 if quick else STEPS
    jobs = [(t, a, s, steps, quick) for t, arms in TASK_ARMS.items() for a in arms for s in seeds]
    if quick:
        done = [_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(WORKERS) as ex:
            done = list(ex.map(_one, jobs))
    acc = {t: {a: [None] * len(seeds) for a in arms} for t, arms in TASK_ARMS.items()}
    change = {t: {a: [None] * len(seeds) for a in arms} for t, arms in TASK_ARMS.items()}
    for task, arm, seed, a, ch in done:
        acc[task][arm][seeds.index(seed)] = a
        change[task][arm][seeds.index(seed)] = ch
    stage_names = list(change["digits"]["one_lr"][0])
    return {
        "config": {"seeds": seeds, "steps": steps, "per_class": PER_CLASS, "lr": LR,
                   "workers": 1 if quick else WORKERS,
                   "arms": {a: {"from_source": s, "decay": d, "frozen_until": u} for a, (s, d, u) in ARMS.items()},
                   "task_arms": TASK_ARMS, "stages": stage_names, "test_size": len(digits(size=28).y_test)},
        "acc": acc,
        "change": change,
        "acc_summary": {t: {a: _stat(v) for a, v in d.items()} for t, d in acc.items()},
        "change_summary": {t: {a: {s: _stat([c[s] for c in runs]) for s in stage_names} for a, runs in d.items()}
                           for t, d in change.items()},
        "seconds": time.perf_counter() - t_start,
        "torch": str(torch.__version__),
    }
