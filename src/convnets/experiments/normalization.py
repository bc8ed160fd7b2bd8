"""The normalization chapter's training experiment: a deep plain CNN without normalization (with
PyTorch's default initialisation and with He's) and with batch norm, over several learning rates
and three seeds; and what forgetting ``model.eval()`` costs the trained batch-norm nets.

Explained in the chapter "Normalization" (``book/02-normalization.md``). Run it with
``python -m convnets.experiments normalization`` (results in ``results/normalization.json``);
the small-batch study is :mod:`convnets.experiments.normalization_small_batch`.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from ..models.plain import PlainDeepCNN, plain_deep_cnn
from ..norm import batch_stat_accuracy

__all__ = ["PlainDeepCNN", "plain_deep_cnn", "batch_stat_accuracy", "train_one", "forgetting_eval",
           "initial_loss", "outcome", "load_trained_bn", "thread_effect", "run", "merge", "ARMS", "ARM_LRS", "LRS", "EPOCHS",
           "SEEDS", "EVAL_LR", "DEPTH", "WIDTH", "CHECKPOINT", "BLOWUP", "CHANCE", "TRAINS"]

#: the sweep's arms: (normalization, initialisation) of the deep plain CNN
ARMS = (("none", "default"), ("none", "he"), ("batch", "default"))
#: peak learning rates (SGD, momentum 0.9, batch 64, cosine decay to 0 over the run)
LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
#: the learning rates each arm is run at (the cached results: the badly initialised plain net, which
#: stays at chance, at the two ends of the range; batch norm at three; He's init at all five)
ARM_LRS = {("none", "default"): (0.01, 1.0), ("none", "he"): LRS, ("batch", "default"): (0.01, 0.1, 1.0)}
EPOCHS = 2
SEEDS = (0, 1, 2)
#: the batch-norm runs whose trained nets are evaluated with and without ``model.eval()``
EVAL_LR = 0.1
DEPTH, WIDTH, BATCH = 9, 8, 64
#: the batch-norm net of seed 0 trained at :data:`EVAL_LR`, saved by :func:`run` (under
#: :func:`convnets.experiments.results_dir`) for the chapter's histograms and folding
CHECKPOINT = "normalization_bn_seed0.pt"
#: a run *diverged* when its loss became NaN or infinite, or when the mean training loss of an epoch
#: exceeded BLOWUP times the loss of the untrained net (:func:`initial_loss`)
BLOWUP = 10.0
#: a run ends *at chance* below this final test accuracy (chance is 0.1); it *trains* at TRAINS or more
CHANCE, TRAINS = 0.15, 0.9


def _clean(v: float) -> float | None:
    """JSON has no NaN: a diverged run's NaN loss is stored as None."""
    return None if v != v or v in (float("inf"), float("-inf")) else float(v)


@torch.no_grad()
def _test(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``net`` in eval mode on ``X``, ``y`` (batches of 1000)."""
    was = net.training
    net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(X), 1000):
        out = net(X[i:i + 1000])
        loss += float(nn.functional.cross_entropy(out, y[i:i + 1000], reduction="sum"))
        correct += int((out.argmax(1) == y[i:i + 1000]).sum())
    net.train(was)
    return loss / len(X), correct / len(X)


@torch.no_grad()
def initial_loss(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of the untrained ``net`` on ``X (N, 1, 28, 28)``, ``y (N,)``: the
    reference for :func:`outcome`'s divergence test. Computed on a copy in train mode (batch norm
    then uses the statistics of each batch of 1000, as in the first training step), so neither the
    net's buffers nor any random generator are touched."""
    net = copy.deepcopy(net).train()
    total = 0.0
    for i in range(0, len(X), 1000):
        total += float(nn.functional.cross_entropy(net(X[i:i + 1000]), y[i:i + 1000], reduction="sum"))
    return total / len(X)


def outcome(record: dict[str, Any]) -> str:
    """What became of one training run of :func:`train_one`: ``"diverged"`` (its loss became NaN or
    infinite, or the mean training loss of some epoch exceeded :data:`BLOWUP` times its
    ``initial_loss``), else ``"chance"`` (final test accuracy below :data:`CHANCE`), ``"trains"``
    (at least :data:`TRAINS`) or ``"learns"`` (in between). A run that blew up and then fell back
    to a finite loss at chance counts as diverged."""
    losses = record["history"]["train_loss"]
    ref = record.get("initial_loss")
    if record["diverged"] or any(v is None for v in losses):
        return "diverged"
    if ref is not None and max(losses) > BLOWUP * ref:
        return "diverged"
    acc = record["test_acc"]
    return "chance" if acc < CHANCE else "trains" if acc >= TRAINS else "learns"


def load_trained_bn(path=None) -> tuple[nn.Module, dict[str, Any]]:
    """The batch-norm net of seed 0 trained by :func:`run` at :data:`EVAL_LR` (saved as
    :data:`CHECKPOINT`): ``(net in eval mode, meta)``, ``meta`` holding its training record's
    test accuracy and history (``run_history``)."""
    from ..train import load_checkpoint
    from . import results_dir

    net = plain_deep_cnn(depth=DEPTH, width=WIDTH, norm="batch", impl="torch")
    state = load_checkpoint(path or results_dir() / CHECKPOINT, net)
    return net.eval(), state["meta"]


def train_one(split, *, norm: str, lr: float, init: str = "default", batch_size: int = BATCH,
              epochs: int = EPOCHS, depth: int = DEPTH, width: int = WIDTH, seed: int = 0,
              max_batches: int | None = None, impl: str = "torch",
              virtual_batch: int | None = None) -> tuple[dict[str, Any], nn.Module]:
    """Train one :class:`PlainDeepCNN` on ``split`` and return ``(record, net)``.

    SGD with momentum 0.9; the learning rate starts at ``lr`` and decays to 0 along a cosine over
    every step of the run (so the last steps are small and batch norm's running statistics
    catch up with the final weights). ``init``: ``"default"`` (PyTorch's) or ``"he"`` (He normal,
    fan_in, biases zero; :func:`convnets.init.init_weights`). A run whose loss becomes NaN or
    infinite stops there and is marked ``diverged``. The record holds the per-epoch history
    (training loss and accuracy over the epoch, test loss and accuracy in eval mode), the final
    test accuracy, the untrained net's loss on the training set (``initial_loss``, for
    :func:`outcome`) and the wall time. With the same seed, torch version, CPU and thread count a
    rerun gives the same record (the chapter checks it on the saved seed-0 run). ``max_batches``: only that many batches per epoch (quick
    tests). ``impl``: the normalization modules (``"torch"`` or ``"convnets"``; they compute the
    same, torch's are a little faster). ``virtual_batch``: batch norm's training statistics over
    groups of that many images (:class:`convnets.norm.GhostBatchNorm2d`).
    """
    from ..data import make_loader
    from ..init import init_weights
    from ..train import seed_everything

    seed_everything(seed)
    net = plain_deep_cnn(depth=depth, width=width, norm=norm, impl=impl, virtual_batch=virtual_batch)
    if init != "default":
        init_weights(net, init)
    loss0 = initial_loss(net, split.X_train, split.y_train)
    loader = make_loader(split.X_train, split.y_train, batch_size, True, seed, None)
    steps_per_epoch = len(loader) if max_batches is None else min(max_batches, len(loader))
    total = steps_per_epoch * epochs
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    hist: dict[str, list] = {k: [] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")}
    t0, step, diverged = time.perf_counter(), 0, False
    for epoch in range(1, epochs + 1):
        te = time.perf_counter()
        net.train()
        loss_sum, correct, n = 0.0, 0, 0
        for i, (X, y) in enumerate(loader):
            if i >= steps_per_epoch:
                break
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            out = net(X)
            loss = nn.functional.cross_entropy(out, y)
            if not torch.isfinite(loss):
                diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(y)
            correct += int((out.argmax(1) == y).sum())
            n += len(y)
        if diverged:
            hist["epoch"].append(float(epoch))
            for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
                hist[k].append(None)
            hist["seconds"].append(time.perf_counter() - te)
            break
        vl, va = _test(net, split.X_test, split.y_test)
        hist["epoch"].append(float(epoch))
        hist["train_loss"].append(_clean(loss_sum / n))
        hist["train_acc"].append(correct / n)
        hist["val_loss"].append(_clean(vl))
        hist["val_acc"].append(va)
        hist["seconds"].append(time.perf_counter() - te)
        if hist["val_loss"][-1] is None:
            diverged = True
            break
    record = {"norm": norm, "init": init, "lr": lr, "batch_size": batch_size, "epochs": epochs, "seed": seed,
              "virtual_batch": virtual_batch,
              "history": hist, "test_acc": None if diverged else hist["val_acc"][-1],
              "train_loss": None if diverged else hist["train_loss"][-1],
              "initial_loss": _clean(loss0), "diverged": diverged, "seconds": time.perf_counter() - t0}
    return record, net


@torch.no_grad()
def forgetting_eval(net: nn.Module, X: torch.Tensor, y: torch.Tensor, *, seed: int = 0,
                    batch_sizes: tuple[int, ...] = (1000, 100, 8, 1), n_stream: int = 100) -> dict[str, Any]:
    """What evaluating a trained batch-norm ``net`` without ``model.eval()`` does.

    Returns test accuracies: ``eval`` (running statistics), ``train_b{B}`` (train mode on random
    test batches of ``B``), ``train_sorted100`` (train mode on batches of 100 in label order, one
    digit per batch for a test set sorted by label), and ``spoiled`` (eval mode after
    ``n_stream`` single test images went through the net in train mode, as an application that
    forgot ``model.eval()`` would: each updates the running statistics); ``spoiled_var_change``:
    the largest relative change of a running variance in the first batch-norm layer.
    """
    out: dict[str, Any] = {"eval": _test(net, X, y)[1]}
    for b in (b for b in batch_sizes if b <= len(X)):
        out[f"train_b{b}"] = batch_stat_accuracy(net, X, y, b, seed=seed)
    order = torch.argsort(y, stable=True)
    out["train_sorted100"] = batch_stat_accuracy(net, X[order], y[order], 100, shuffle=False)
    spoiled = copy.deepcopy(net).train()
    stream = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:n_stream]
    for i in stream:
        spoiled(X[i:i + 1])
    out["spoiled"] = _test(spoiled, X, y)[1]
    bn0 = next(m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    bn1 = next(m for m in spoiled.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    out["spoiled_var_change"] = float(((bn1.running_var - bn0.running_var) / bn0.running_var).abs().max())
    return out


def thread_effect(split, *, steps: int = 30, threads: tuple[int, ...] = (1, 1, 2), seed: int = 0) -> list[dict[str, Any]]:
    """What the number of CPU threads does to a seeded run: the batch-norm net trained for ``steps``
    steps at :data:`EVAL_LR` (:func:`train_one`, one epoch cut to ``steps`` batches) once per entry
    of ``threads``. Returns one dict per run: ``threads``, ``train_loss``, ``test_acc`` and
    ``max_weight_diff`` (the largest difference of any weight or buffer from the first run's)."""
    before = torch.get_num_threads()
    runs = []
    try:
        for n in threads:
            torch.set_num_threads(n)
            rec, net = train_one(split, norm="batch", lr=EVAL_LR, epochs=1, max_batches=steps, seed=seed)
            runs.append((n, rec, {k: v.detach().clone() for k, v in net.state_dict().items()}))
    finally:
        torch.set_num_threads(before)
    first = runs[0][2]
    return [{"threads": n, "steps": steps, "train_loss": rec["train_loss"], "test_acc": rec["test_acc"],
             "max_weight_diff": max(float((w[k] - first[k]).abs().max()) for k in w if w[k].is_floating_point())}
            for n, rec, w in runs]


def _quick_split(split):
    from ..data import TensorSplit

    return TensorSplit(split.X_train[:512], split.y_train[:512], split.X_test[:200],
                       split.y_test[:200], split.classes)


def run(quick: bool = False, seeds: tuple[int, ...] | None = None,
        save: bool | None = None) -> dict[str, Any]:
    """The whole experiment (30 two-epoch training runs; see the chapter for its time; ``quick``: seconds).

    Returns ``{"sweep": [...], "forgetting": [...], "threads_check": [...], "config": {...},
    "seconds": ...}``: one record
    per (arm, learning rate, seed) of the sweep (see :func:`train_one`), and for each seed the
    :func:`forgetting_eval` of the batch-norm net trained at :data:`EVAL_LR`; that net of seed 0
    is saved as :data:`CHECKPOINT` (``save``: default unless ``quick``); ``threads_check``:
    :func:`thread_effect` (with seed 0). ``seeds``: only
    these seeds (the runs of several seeds can be computed in parallel processes and joined with
    :func:`merge`).
    """
    from ..data import mnist5k

    t0 = time.perf_counter()
    split = mnist5k()
    if quick:  # a sliver of the data: checks the code paths, not the findings
        split = _quick_split(split)
    lrs, epochs, all_seeds = ((EVAL_LR,), 1, (0, 1)) if quick else (LRS, EPOCHS, SEEDS)
    seeds = all_seeds if seeds is None else tuple(seeds)
    max_batches = 3 if quick else None
    sweep, forgetting = [], []
    for seed in seeds:
        for norm, init in ARMS:
            for lr in (lrs if quick else ARM_LRS.get((norm, init), lrs)):
                rec, net = train_one(split, norm=norm, init=init, lr=lr, epochs=epochs, seed=seed,
                                     max_batches=max_batches)
                sweep.append(rec)
                if norm == "batch" and lr == EVAL_LR and not rec["diverged"]:
                    f = forgetting_eval(net, split.X_test, split.y_test, seed=seed)
                    forgetting.append({"seed": seed, "lr": lr, **f})
                    if seed == 0 and (not quick if save is None else save):
                        _save_bn(net, rec)
                print(f"[normalization] seed {seed} {norm}/{init} lr {lr}: acc {rec['test_acc']} "
                      f"({rec['seconds']:.0f} s, {time.perf_counter() - t0:.0f} s so far)", flush=True)
    threads_check = thread_effect(split, steps=3 if quick else 30) if 0 in seeds else []
    config = {"depth": DEPTH, "width": WIDTH, "optimizer": "SGD momentum 0.9, cosine decay to 0 per step",
              "batch_size": BATCH, "epochs": epochs, "lrs": list(lrs), "arms": [list(a) for a in ARMS],
              "arm_lrs": {f"{n}/{i}": list(v) for (n, i), v in ARM_LRS.items()},
              "seeds": list(seeds), "eval_lr": EVAL_LR, "quick": quick, "norm_impl": "torch",
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    return {"sweep": sweep, "forgetting": forgetting, "threads_check": threads_check, "config": config,
            "seconds": time.perf_counter() - t0}


def _save_bn(net: nn.Module, rec: dict[str, Any]) -> None:
    from ..train import save_checkpoint
    from . import results_dir

    save_checkpoint(results_dir() / CHECKPOINT, net, norm=rec["norm"], lr=rec["lr"], seed=rec["seed"],
                    epochs=rec["epochs"], test_acc=rec["test_acc"], run_history=rec["history"],
                    threads=torch.get_num_threads(), torch_version=str(torch.__version__))


def merge(parts: list[dict[str, Any]],
          list_keys: tuple[str, ...] = ("sweep", "forgetting", "threads_check")) -> dict[str, Any]:
    """Join the results of :func:`run` computed for different ``seeds`` (in parallel processes)
    into one: the lists concatenated in seed order, ``seeds`` joined, ``seconds`` summed (the time
    one process would take) and each part's time kept in ``config["part_seconds"]``."""
    parts = sorted(parts, key=lambda p: p["config"]["seeds"])
    out: dict[str, Any] = {k: [r for p in parts for r in p.get(k, [])] for k in list_keys}
    config = dict(parts[0]["config"])
    config["seeds"] = [s for p in parts for s in p["config"]["seeds"]]
    config["part_seconds"] = [p["seconds"] for p in parts]
    out["config"] = config
    out["seconds"] = sum(p["seconds"] for p in parts)
    return out
