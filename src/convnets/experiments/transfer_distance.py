"""Does transfer help less when the target task is further from the source? A source model
trained on MNIST 5k's digits 0-4 only, moved to three targets of increasing distance, with the
protocol of :mod:`convnets.experiments.transfer_curves` (linear probe and fine-tuning against
training from scratch, several label budgets, several seeds), with 100 Adam steps per run instead of
200 (the budgets here are 1 to 4 images per class; the machine it was sized for is shared).

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

- source: :func:`convnets.experiments.source_model.build_source_model` with 5 outputs, trained
  with :data:`~convnets.experiments.source_model.SOURCE_CONFIG` on the MNIST 5k training digits
  0-4 (saved as ``results/source-digits04.pt``);
- targets (UCI digits at 28x28, 5 classes each): ``near``: digits 0-4 (the source's classes,
  other writers and scanner); ``far``: digits 5-9 (classes the source never saw);
- methods: ``scratch`` (random init, every layer, Adam lr), ``probe`` (frozen source, a
  logistic regression on standardised features), ``full`` (every stage fine-tuned, lr / 2.6 per
  stage towards the input, as ``transfer_curves``'s ``full``).

The "transfer gain" of a method is its accuracy minus scratch's on the same target, budget and
seed. ``python -m convnets.experiments transfer_distance`` writes ``results/transfer_distance.json``
(it reuses ``results/source-digits04.pt`` when present; ``CONVNETS_RECOMPUTE=1`` retrains it). The
runs are independent and spread over :data:`WORKERS` single-threaded processes.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["PER_CLASS", "SEEDS", "TARGETS", "CONFIG", "class_subset", "invert", "train_source04",
           "train_on", "relative_change", "run"]

PER_CLASS = [1, 2, 4]
SEEDS = [0, 1, 2]
#: target name -> (UCI digit classes, inverted contrast)
TARGETS = {"near": ((0, 1, 2, 3, 4), False), "far": ((5, 6, 7, 8, 9), False)}
#: worker processes (each single-threaded) for the independent runs
WORKERS = 3
SOURCE_CLASSES = (0, 1, 2, 3, 4)
SOURCE_CHECKPOINT = "source-digits04.pt"
CONFIG = {"steps": 100, "batch_size": 64, "lr": 2e-3, "decay": 2.6, "C": 1.0}


def class_subset(split, classes: Sequence[int]):
    """The images of ``split`` (a :class:`convnets.data.TensorSplit`) whose label is in
    ``classes``, relabelled ``0 .. len(classes) - 1`` in that order."""
    from ..data import TensorSplit

    lut = torch.full((int(max(split.y_train.max(), split.y_test.max())) + 1,), -1, dtype=torch.long)
    for i, c in enumerate(classes):
        lut[c] = i
    tr, te = lut[split.y_train] >= 0, lut[split.y_test] >= 0
    names = tuple(split.classes[c] for c in classes)
    return TensorSplit(split.X_train[tr], lut[split.y_train[tr]], split.X_test[te], lut[split.y_test[te]], names)


def invert(split):
    """The same split with inverted contrast, ``1 - x`` (images in ``[0, 1]``)."""
    return type(split)(1 - split.X_train, split.y_train, 1 - split.X_test, split.y_test, split.classes)


def train_source04(epochs: int | None = None) -> tuple[torch.nn.Module, dict]:
    """The source model's recipe on MNIST 5k's digits 0-4 only (5 outputs). Returns
    ``(model, info)`` with the test accuracy on the held-out digits 0-4."""
    from ..data import loaders, mnist5k
    from ..train import evaluate, fit, seed_everything
    from .source_model import SOURCE_CONFIG, build_source_model

    cfg = dict(SOURCE_CONFIG)
    if epochs is not None:
        cfg["epochs"] = epochs
    seed_everything(cfg["seed"])
    split = class_subset(mnist5k(), SOURCE_CLASSES)
    train_loader, test_loader = loaders(split, batch_size=cfg["batch_size"], seed=cfg["seed"])
    model = build_source_model(len(SOURCE_CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg["epochs"], 1))
    t0 = time.perf_counter()
    fit(model, train_loader, None, epochs=cfg["epochs"], optimizer=opt, scheduler=sched, device="cpu",
        verbose=False)
    info = {"config": cfg, "classes": list(SOURCE_CLASSES), "train_size": len(split.y_train),
            "test_size": len(split.y_test), "test_acc": evaluate(model, test_loader)["acc"],
            "seconds": time.perf_counter() - t0}
    return model.eval(), info


def train_on(split, seed: int, steps: int, *, init_state: dict | None, lr: float, decay: float = 1.0,
             freeze_until: str | None = None) -> tuple[torch.nn.Module, float, dict]:
    """Train the source architecture on ``split`` for ``steps`` Adam steps (batches of
    ``CONFIG["batch_size"]`` or all the images when fewer).

    ``init_state=None``: random initialisation (seeded by ``seed``), every layer trained; else the
    backbone starts from ``init_state`` with a new head, the stages up to ``freeze_until`` are
    frozen, and the stage ``k`` places below the head learns at ``lr / decay**k``.
    Returns ``(model, test accuracy, state before training)``.
    """
    from ..data import loaders
    from ..train import evaluate, fit, seed_everything
    from ..transfer import freeze, param_groups, replace_head
    from .source_model import build_source_model

    seed_everything(seed)
    if init_state is None:
        model = build_source_model(split.num_classes)
        groups = param_groups(model, lr, decay)
    else:
        n_out = init_state["fc.weight"].shape[0]
        model = build_source_model(n_out)
        model.load_state_dict(init_state)
        replace_head(model, split.num_classes)
        if freeze_until is not None:
            freeze(model, freeze_until)
        groups = param_groups(model, lr, decay)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    n = len(split.y_train)
    bs = min(CONFIG["batch_size"], n)
    train_loader, test_loader = loaders(split, batch_size=bs, seed=seed)
    epochs = max(1, math.ceil(steps / math.ceil(n / bs)))
    fit(model, train_loader, None, epochs=epochs, optimizer=torch.optim.Adam(groups, lr=lr), device="cpu",
        verbose=False)
    return model, evaluate(model, test_loader)["acc"], before


def relative_change(model: torch.nn.Module, before: dict) -> dict[str, float]:
    """``||K - K_0|| / ||K_0||`` over the convolution kernels of each stage but the head, where
    ``K_0`` are the kernels in ``before`` (a state dict)."""
    from ..transfer import stages

    state = model.state_dict()
    out = {}
    for name, _ in stages(model)[:-1]:
        prefixes = tuple(p + "." for p in name.split("+"))
        keys = [k for k in before if k.startswith(prefixes) and k.endswith("weight") and before[k].ndim == 4]
        num = sum(float((state[k] - before[k]).pow(2).sum()) for k in keys)
        den = sum(float(before[k].pow(2).sum()) for k in keys)
        out[name] = math.sqrt(num / den)
    return out


def _probe(source: torch.nn.Module, split, C: float) -> float:
    """Test accuracy of a logistic regression on the standardised frozen features of ``source``."""
    from ..transfer import extract_features, fit_logistic_regression

    Ftr = extract_features(source, split.X_train).double()
    Fte = extract_features(source, split.X_test).double()
    mu, sd = Ftr.mean(0), Ftr.std(0, unbiased=False).clamp_min(1e-12)
    lin = fit_logistic_regression(((Ftr - mu) / sd).float(), split.y_train, split.num_classes, C=C)
    with torch.no_grad():
        pred = lin(((Fte - mu) / sd).float()).argmax(1)
    return float((pred == split.y_test).double().mean())


def _stat(v: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "min": float(np.min(v)), "max": float(np.max(v))}


def _target(tname: str):
    from ..data import digits

    classes, inverted = TARGETS[tname]
    base = class_subset(digits(size=28), classes)
    return invert(base) if inverted else base


def _one(job: tuple) -> tuple:
    """One (target, budget, seed) cell: probe, scratch and full fine-tuning accuracies."""
    tname, k, seed, steps, source_path = job
    torch.set_num_threads(1)
    from ..train import load_checkpoint
    from .source_model import build_source_model

    source = build_source_model(len(SOURCE_CLASSES))
    load_checkpoint(source_path, source)
    source.eval()
    source_state = {k_: v.clone() for k_, v in source.state_dict().items()}
    split = _target(tname).subset(k, seed)
    out = {"probe": _probe(source, split, CONFIG["C"])}
    out["scratch"] = train_on(split, seed, steps, init_state=None, lr=CONFIG["lr"])[1]
    out["full"] = train_on(split, seed, steps, init_state=source_state, lr=CONFIG["lr"], decay=CONFIG["decay"])[1]
    return tname, str(k), seed, out


def run(quick: bool = False) -> dict:
    """Train (or read) the 0-4 source, then every (target, budget, seed, method). ``quick``: a
    1-epoch source, 1 budget, 1 seed, 5 steps, nothing saved, no worker processes (for the tests)."""
    import os
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    from ..train import load_checkpoint, save_checkpoint
    from . import results_dir

    t_start = time.perf_counter()
    path = results_dir() / SOURCE_CHECKPOINT
    if quick:
        source, src_info = train_source04(epochs=1)
        path = Path(tempfile.mkdtemp()) / SOURCE_CHECKPOINT
        save_checkpoint(path, source, **src_info)
    elif path.is_file() and os.environ.get("CONVNETS_RECOMPUTE", "") not in ("1", "true", "yes"):
        src_info = load_checkpoint(path, build_source_model_04())["meta"]
    else:
        source, src_info = train_source04()
        save_checkpoint(path, source, **src_info)
    per_class = [1] if quick else PER_CLASS
    seeds = [0] if quick else SEEDS
    steps = 5 if quick else CONFIG["steps"]
    jobs = [(t, k, s, steps, str(path)) for k in sorted(per_class, reverse=True) for t in TARGETS for s in seeds]
    if quick:
        done = [_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(WORKERS) as ex:
            done = list(ex.map(_one, jobs))
    acc: dict = {t: {m: {str(k): [None] * len(seeds) for k in per_class} for m in ("scratch", "probe", "full")}
                 for t in TARGETS}
    for tname, key, seed, out in done:
        for m, a in out.items():
            acc[tname][m][key][seeds.index(seed)] = a
    gain = {t: {m: {key: [a - s for a, s in zip(acc[t][m][key], acc[t]["scratch"][key])] for key in acc[t][m]}
                for m in ("probe", "full")} for t in acc}
    sizes = {t: int(len(_target(t).y_test)) for t in TARGETS}
    return {
        "config": {**CONFIG, "per_class": [str(k) for k in per_class], "seeds": seeds, "steps": steps,
                   "workers": 1 if quick else WORKERS,
                   "targets": {t: {"classes": list(c), "inverted": inv} for t, (c, inv) in TARGETS.items()},
                   "test_size": sizes},
        "source": src_info,
        "acc": acc,
        "gain": gain,
        "summary": {t: {m: {k: _stat(v) for k, v in d.items()} for m, d in acc[t].items()} for t in acc},
        "gain_summary": {t: {m: {k: _stat(v) for k, v in d.items()} for m, d in gain[t].items()} for t in gain},
        "seconds": time.perf_counter() - t_start,
        "torch": str(torch.__version__),
    }


def build_source_model_04() -> torch.nn.Module:
    """An untrained network of the 0-4 source's architecture (5 outputs)."""
    from .source_model import build_source_model

    return build_source_model(len(SOURCE_CLASSES))
