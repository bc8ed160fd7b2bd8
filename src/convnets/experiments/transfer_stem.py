"""How far does fine-tuning move each stage of the source model when every stage gets the SAME
learning rate? And does the source's first layer (the stem) serve the target as it is?

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

The source model (:func:`convnets.experiments.source_model.load_source_model`, MNIST 5k) is
fine-tuned on the UCI digits (28x28, 10 labels per class) and on the same digits with inverted
contrast, by Adam for :data:`STEPS` steps, in four arms, each over :data:`SEEDS`:

- ``one_lr``: every stage trained at one learning rate (``decay=1``);
- ``ulmfit``: every stage trained at ``lr / 2.6**k`` (the recipe of ``transfer_curves``, where
  the stem learns about 46 times more slowly than the head: the arm that made the stem's small
  change circular);
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

__all__ = ["SEEDS", "STEPS", "PER_CLASS", "ARMS", "run"]

SEEDS = [0, 1, 2]
STEPS = 200
PER_CLASS = 10
LR = 2e-3
DECAY = 2.6
#: arm -> (start from the source?, learning-rate decay per stage, stage frozen up to)
ARMS = {"one_lr": (True, 1.0, None), "ulmfit": (True, DECAY, None), "frozen_stem": (True, 1.0, "conv1+bn1"),
        "scratch": (False, 1.0, None)}
#: which arms run on which target (the inverted one only where it answers a question)
TASK_ARMS = {"digits": ["one_lr", "ulmfit", "frozen_stem", "scratch"], "inverted": ["one_lr", "frozen_stem"]}


def run(quick: bool = False) -> dict:
    """Every (task, arm, seed) run. ``quick``: 1 seed, 5 steps (for the tests)."""
    from ..data import digits
    from .source_model import build_source_model, load_source_model
    from .transfer_distance import _stat, invert, relative_change, train_on

    t_start = time.perf_counter()
    if quick:
        try:
            source = load_source_model(train_if_missing=False)
        except FileNotFoundError:
            source = build_source_model().eval()
    else:
        source = load_source_model()
    source_state = {k: v.clone() for k, v in source.state_dict().items()}
    uci = digits(size=28)
    seeds = [0] if quick else SEEDS
    steps = 5 if quick else STEPS
    acc: dict = {}
    change: dict = {}
    for task, arms in TASK_ARMS.items():
        acc[task], change[task] = {}, {}
        for arm in arms:
            from_source, decay, until = ARMS[arm]
            acc[task][arm], change[task][arm] = [], []
            for seed in seeds:
                split = uci.subset(PER_CLASS, seed)
                if task == "inverted":
                    split = invert(split)
                model, a, before = train_on(split, seed, steps, init_state=source_state if from_source else None,
                                            lr=LR, decay=decay, freeze_until=until)
                acc[task][arm].append(a)
                change[task][arm].append(relative_change(model, before))
    stage_names = list(change["digits"]["one_lr"][0])
    return {
        "config": {"seeds": seeds, "steps": steps, "per_class": PER_CLASS, "lr": LR, "decay": DECAY,
                   "arms": {a: {"from_source": s, "decay": d, "frozen_until": u} for a, (s, d, u) in ARMS.items()},
                   "task_arms": TASK_ARMS, "stages": stage_names, "test_size": len(uci.y_test)},
        "acc": acc,
        "change": change,
        "acc_summary": {t: {a: _stat(v) for a, v in d.items()} for t, d in acc.items()},
        "change_summary": {t: {a: {s: _stat([c[s] for c in runs]) for s in stage_names} for a, runs in d.items()}
                           for t, d in change.items()},
        "seconds": time.perf_counter() - t_start,
        "torch": str(torch.__version__),
    }
