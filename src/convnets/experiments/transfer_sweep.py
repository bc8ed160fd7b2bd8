"""How many stages must be retrained, for a near and a farther target, with every run trained
until its test accuracy stops changing?

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``), section "The
further the task, the more layers?".

The source model (:func:`convnets.experiments.source_model.load_source_model`, MNIST 5k) gets a
new 10-way head and its last ``s`` stages are retrained (``s = 1``: the head only ... ``s = 5``:
every stage, ``lr / 2.6**k`` for the ``k``-th stage below the head, as ULMFiT) with Adam (lr
:data:`LR`, batches of :data:`BATCH_SIZE`) on :data:`PER_CLASS` labelled UCI digits per class
(28x28), and on the same images with inverted contrast (``1 - x``: dark strokes on white). Seeds
:data:`SEEDS` (the seed picks the labelled images, the new head's initialisation and the batch
order).

Convergence is recorded, not assumed: each run logs its test accuracy and its training loss at
:data:`CHECKPOINTS` steps (the stages that include a convolution) or :data:`HEAD_CHECKPOINTS`
(the head alone: a linear layer on frozen features, so it is trained on the features computed
once, which is the same computation and cheap enough to run far longer). The head alone is also
fitted as the converged logistic regression of the chapter's linear probe (L-BFGS, ``C = 1``,
standardised features): ``probe``.

``python -m convnets.experiments transfer_sweep`` writes ``results/transfer_sweep.json``
(single-threaded, one process).
"""
from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["SEEDS", "PER_CLASS", "LR", "DECAY", "BATCH_SIZE", "CHECKPOINTS", "HEAD_CHECKPOINTS", "TASKS",
           "run"]

SEEDS = [0, 1, 2]
PER_CLASS = 10
LR = 2e-3
DECAY = 2.6
BATCH_SIZE = 64
#: Adam steps at which a run that retrains convolutions is evaluated (the last one is its result).
CHECKPOINTS = [25, 50, 100, 200]
#: the same for the head alone (a linear layer: cheap, and slower to converge at this lr).
HEAD_CHECKPOINTS = [200 * 2 ** i for i in range(9)]   # 200 ... 51,200
TASKS = ["digits", "inverted"]


def _batches(n: int, bs: int, gen: torch.Generator):
    """Index batches forever: a fresh permutation of ``range(n)`` each epoch."""
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            yield perm[i:i + bs]


@torch.no_grad()
def _score(fn, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``fn(X)`` against ``y``."""
    logits = fn(X)
    return float(torch.nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


def _train(step_fn, eval_fn, split, seed: int, checkpoints: list[int]) -> dict[str, list[float]]:
    """Run ``step_fn(idx)`` for ``checkpoints[-1]`` steps over seeded batches and record the test
    accuracy and the training loss (``eval_fn``) at each checkpoint."""
    n = len(split.y_train)
    gen = torch.Generator().manual_seed(seed)
    curve: dict[str, list[float]] = {"test_acc": [], "train_loss": [], "train_acc": []}
    batches = _batches(n, min(BATCH_SIZE, n), gen)
    for step in range(1, checkpoints[-1] + 1):
        step_fn(next(batches))
        if step in checkpoints:
            loss, tr_acc = eval_fn(split.X_train, split.y_train)
            curve["train_loss"].append(loss)
            curve["train_acc"].append(tr_acc)
            curve["test_acc"].append(eval_fn(split.X_test, split.y_test)[1])
    return curve


def one_run(split, seed: int, retrain: int, source_state: dict, checkpoints: list[int]) -> dict[str, list[float]]:
    """Retrain the last ``retrain`` stages of the source model on ``split``; the learning curve
    at ``checkpoints`` (lists ``test_acc``, ``train_loss``, ``train_acc``)."""
    from ..train import seed_everything
    from ..transfer import extract_features, freeze, param_groups, replace_head, stages
    from .source_model import build_source_model

    seed_everything(seed)
    model = build_source_model()
    model.load_state_dict(source_state)
    replace_head(model, split.num_classes)
    names = [n for n, _ in stages(model)]
    if not 1 <= retrain <= len(names):
        raise ValueError(f"retrain must be between 1 and {len(names)}; got {retrain!r}")
    if retrain < len(names):
        freeze(model, names[-retrain - 1])
    opt = torch.optim.Adam(param_groups(model, LR, DECAY), lr=LR)
    if retrain == 1:
        # The head alone: a linear layer on features that do not change (frozen stages, batch
        # norms in eval mode), so train it on the features computed once.
        F_tr, F_te = extract_features(model, split.X_train), extract_features(model, split.X_test)
        feats = {id(split.X_train): F_tr, id(split.X_test): F_te}
        head = model.fc

        def step_fn(idx):
            loss = torch.nn.functional.cross_entropy(head(F_tr[idx]), split.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

        def eval_fn(X, y):
            return _score(head, feats[id(X)], y)
    else:
        def step_fn(idx):
            model.train()
            loss = torch.nn.functional.cross_entropy(model(split.X_train[idx]), split.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

        def eval_fn(X, y):
            model.eval()
            return _score(model, X, y)
    return _train(step_fn, eval_fn, split, seed, checkpoints)


def run(quick: bool = False) -> dict:
    """Every (task, stages retrained, seed) run and the logistic-regression head. ``quick``: one
    seed, 2 and 5 steps, the head and all stages only (for the tests)."""
    from ..data import digits
    from ..transfer import stages
    from .source_model import build_source_model, source_for
    from .transfer_curves import probe_logistic
    from .transfer_distance import _stat, invert

    t_start = time.perf_counter()
    source = source_for(quick)
    source_state = {k: v.clone() for k, v in source.state_dict().items()}
    n_stages = len(stages(build_source_model()))
    retrain = [1, n_stages] if quick else list(range(1, n_stages + 1))
    seeds = [0] if quick else SEEDS
    base = digits(size=28)
    per_class = 1 if quick else PER_CLASS
    curves: dict = {t: {str(s): [] for s in retrain} for t in TASKS}
    probe: dict = {t: [] for t in TASKS}
    seconds: dict = {t: {str(s): 0.0 for s in retrain} for t in TASKS}
    for task in TASKS:
        for seed in seeds:
            split = base.subset(per_class, seed)
            if task == "inverted":
                split = invert(split)
            probe[task].append(probe_logistic(source_state, split, 1.0)[1])
            for s in retrain:
                cps = ([2, 5] if quick else (HEAD_CHECKPOINTS if s == 1 else CHECKPOINTS))
                t0 = time.perf_counter()
                curves[task][str(s)].append(one_run(split, seed, s, source_state, cps))
                seconds[task][str(s)] += time.perf_counter() - t0
    final = {t: {s: [c["test_acc"][-1] for c in runs] for s, runs in d.items()} for t, d in curves.items()}
    return {
        "config": {"seeds": seeds, "per_class": per_class, "lr": LR, "decay": DECAY, "batch_size": BATCH_SIZE,
                   "checkpoints": [2, 5] if quick else CHECKPOINTS,
                   "head_checkpoints": [2, 5] if quick else HEAD_CHECKPOINTS,
                   "stages": [str(s) for s in retrain], "tasks": TASKS, "test_size": len(base.y_test),
                   "probe_C": 1.0, "threads": torch.get_num_threads()},
        "curves": curves,
        "acc": final,
        "summary": {t: {s: _stat(v) for s, v in d.items()} for t, d in final.items()},
        "probe": probe,
        "probe_summary": {t: _stat(v) for t, v in probe.items()},
        "seconds": {"runs": seconds, "total": time.perf_counter() - t_start},
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
    }
