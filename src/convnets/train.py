"""One training loop for the whole book: any device, a progress bar, a history, checkpoints.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).

    >>> history = fit(net, train_loader, test_loader, epochs=5, lr=1e-3)   # doctest: +SKIP
    >>> history.plot()                                                      # doctest: +SKIP

Two readable pieces and a driver: :func:`train_one_epoch` (one pass over the training data:
forward, loss, backward, step) and :func:`evaluate` (the same forward pass in eval mode, without
gradients) both count with :class:`RunningMetrics`; :func:`fit` resolves the options once
(device, mixed precision, distributed, compile) and calls them once per epoch.

The loop keeps the GPU busy: the loss and the number of correct predictions are summed on the
device and read back once per epoch (and when the progress bar refreshes), never per step.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .utils import atomic_write, eval_mode, get_device, iter_batches, model_device, split_outputs

__all__ = [
    "seed_everything",
    "History",
    "RunningMetrics",
    "train_one_epoch",
    "fit",
    "evaluate",
    "predict",
    "accuracy",
    "save_checkpoint",
    "load_checkpoint",
    "init_distributed",
]


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python's, numpy's and torch's generators (CPU and every GPU).

    ``deterministic=True`` also asks torch for deterministic kernels (slower on a GPU).
    Returns a :class:`torch.Generator` seeded with ``seed`` for code that takes one.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows of ``logits (N, K)`` whose argmax equals ``y (N,)`` (or the argmax of soft
    targets ``y (N, K)``)."""
    if y.ndim == 2:
        y = y.argmax(1)
    return (logits.argmax(1) == y).float().mean().item()


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run. Lists are aligned; ``val_*`` hold ``nan`` when no
    validation loader was given."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def append(self, **row: float) -> None:
        for k in asdict(self):
            getattr(self, k).append(row[k])

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))

    def last(self) -> dict[str, float]:
        """The last epoch's row as a dict (empty when nothing was recorded)."""
        return {k: v[-1] for k, v in asdict(self).items()} if len(self) else {}

    def to_dict(self) -> dict[str, list]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> "History":
        known = {k: list(v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: str | Path) -> None:
        atomic_write(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def extend(self, other: "History") -> None:
        """Append another run's epochs (numbered on from this one's)."""
        offset = self.epoch[-1] if self.epoch else 0
        for row in (dict(zip(other.to_dict(), vals)) for vals in zip(*other.to_dict().values())):
            row["epoch"] += offset
            self.append(**row)

    def plot(self, axes=None, label: str | None = None, title: str | None = None):
        """Loss and accuracy per epoch (:func:`convnets.plots.plot_history`). Returns the axes."""
        from .plots import plot_history

        return plot_history(self, axes=axes, label=label, title=title)

    def __repr__(self) -> str:
        if not len(self):
            return "History(empty)"
        r = self.last()
        return (
            f"History({len(self)} epochs, {self.total_seconds:.1f} s; last: train loss "
            f"{r['train_loss']:.4f} acc {r['train_acc']:.4f}, val loss {r['val_loss']:.4f} "
            f"acc {r['val_acc']:.4f})"
        )


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile's or DDP's wrapper."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model) if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError("each batch from the loader must be a pair (images, labels)")
    X, y = batch[0], batch[1]
    nb = device.type == "cuda"
    X = X.to(device, non_blocking=nb)
    if channels_last and X.ndim == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y.to(device, non_blocking=nb)


def _amp_dtype(amp: bool | str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (``None``: full precision)."""
    if amp is False or amp is None:
        return None
    if amp is True:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if amp not in table:
        raise ValueError(f"amp must be False, True, 'bf16' or 'fp16'; got {amp!r}")
    return table[amp]


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class RunningMetrics:
    """Sums of the loss and of the correct predictions over an epoch, kept on the device.

    ``update`` adds one batch (no read from the device); ``loss`` reads the running mean (the
    progress bar calls it every few steps); ``result`` sums over processes under
    ``torch.distributed`` and returns ``{"loss": mean loss, "acc": accuracy, "n": examples}``.
    Labels ``y`` are class indices ``(N,)`` or soft targets ``(N, K)`` (their argmax counts).
    """

    def __init__(self, device: torch.device):
        self.total_loss = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.n = 0

    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch: its mean ``loss`` (a scalar), ``logits (N, K)`` and labels ``y``."""
        self.total_loss += loss.detach().double() * len(y)
        self.correct += (logits.detach().argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum()
        self.n += len(y)

    def loss(self) -> float:
        """The mean loss so far on this process (one read from the device)."""
        return self.total_loss.item() / max(self.n, 1)

    def result(self) -> dict[str, float]:
        """``{"loss", "acc", "n"}`` over every process (a no-op sum without torch.distributed)."""
        if self.n == 0:
            raise ValueError("the loader gave no batches")
        n, total, correct = self.n, self.total_loss, self.correct
        if _is_distributed():
            t = torch.stack([total.double(), correct.double(),
                             torch.tensor(float(n), device=total.device, dtype=torch.float64)])
            torch.distributed.all_reduce(t)
            return {"loss": t[0].item() / t[2].item(), "acc": t[1].item() / t[2].item(), "n": int(t[2].item())}
        return {"loss": total.item() / n, "acc": float(correct.item()) / n, "n": n}


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
    amp: bool | str | torch.dtype | None = False,
    scaler: torch.amp.GradScaler | None = None,
    channels_last: bool = False,
    batch_transform: Callable | None = None,
    aux_weight: float = 0.3,
    grad_clip: float | None = None,
    progress: Any | None = None,
    log_every: int = 20,
) -> dict[str, float]:
    """One pass over ``loader`` in train mode: for each batch ``(X, y)``, forward, loss,
    backward, optimizer step. Returns ``{"loss", "acc", "n"}`` of the epoch (the loss and
    accuracy of each batch as the model stood before its step, averaged over examples).

    ``model`` may return ``(logits, *aux_logits)``: the loss is then
    ``loss(logits) + aux_weight * sum(loss(aux))``. ``amp`` is as in :func:`fit` or an autocast
    dtype; ``scaler`` a :class:`torch.amp.GradScaler` (fp16 only). ``batch_transform(X, y)``
    runs on the device before the forward pass (mixup, batch augmentation). ``grad_clip`` clips
    the gradients' global norm. ``progress`` is a tqdm bar advanced by one per batch.
    """
    dev = model_device(model, device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    amp_dtype = amp if isinstance(amp, torch.dtype) else _amp_dtype(amp, dev)
    scaler = scaler or torch.amp.GradScaler(dev.type, enabled=False)
    metrics = RunningMetrics(dev)
    model.train()
    for step, batch in enumerate(loader):
        X, y = _to_device(batch, dev, channels_last)
        if batch_transform is not None:
            X, y = batch_transform(X, y)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits, aux = split_outputs(model(X))
            loss = loss_fn(logits.float(), y)
            for a in aux:
                loss = loss + aux_weight * loss_fn(a.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        metrics.update(loss, logits, y)
        if progress is not None:
            progress.update(1)
            if step % log_every == 0:
                progress.set_postfix(loss=f"{metrics.loss():.4f}")
    return metrics.result()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
    amp: bool | str | torch.dtype | None = False,
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode (the mode is restored),
    without gradients. Returns ``{"loss": ..., "acc": ..., "n": number of examples}``."""
    dev = model_device(model, device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    amp_dtype = amp if isinstance(amp, torch.dtype) else _amp_dtype(amp, dev)
    metrics = RunningMetrics(dev)
    with eval_mode(model):
        for batch in loader:
            X, y = _to_device(batch, dev, channels_last)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits, _ = split_outputs(model(X))
                loss = loss_fn(logits.float(), y)
            metrics.update(loss, logits, y)
    if metrics.n == 0:
        raise ValueError("the loader gave no batches: nothing to evaluate")
    return metrics.result()


@torch.no_grad()
def predict(
    model: nn.Module,
    data: torch.Tensor | Iterable,
    device: str | torch.device | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """Logits ``(N, K)`` on the CPU for images ``(N, C, H, W)`` or a loader of ``(X, y)`` batches,
    computed in eval mode (the mode is restored)."""
    dev = model_device(model, device)
    with eval_mode(model):
        outs = [split_outputs(model(X.to(dev)))[0].float().cpu() for X, _ in iter_batches(data, batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    epochs: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: Callable | None = None,
    scheduler: Any | None = None,
    device: str | torch.device | None = None,
    verbose: bool = True,
    amp: bool | str = False,
    channels_last: bool = False,
    compile_model: bool = False,
    grad_clip: float | None = None,
    batch_transform: Callable | None = None,
    aux_weight: float = 0.3,
    checkpoint: str | Path | None = None,
    log_every: int = 20,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Parameters
    ----------
    model : a module mapping images ``(N, C, H, W)`` to logits ``(N, K)`` (or a tuple whose first
        element is the logits and whose others are auxiliary logits, weighted by ``aux_weight``).
    train_loader, val_loader : iterables of ``(X, y)`` batches; ``y`` holds class indices ``(N,)``
        or soft targets ``(N, K)`` (mixup, cutmix).
    optimizer : defaults to Adam with learning rate ``lr``.
    scheduler : a learning-rate scheduler stepped once per epoch.
    device : ``None``/``"auto"`` picks CUDA, then MPS, then the CPU; the model is moved there.
    amp : mixed precision: ``True`` (bf16, or fp16 with loss scaling on GPUs without bf16),
        ``"bf16"`` or ``"fp16"``.
    channels_last, compile_model : GPU speed options (NHWC memory layout, :func:`torch.compile`).
    batch_transform : ``f(X, y) -> (X, y)`` applied to each training batch on the device.
    checkpoint : a path; the model, optimizer and history are saved there after every epoch.
    log_every : steps between progress-bar refreshes (the only per-step reads from the device).

    Each epoch is :func:`train_one_epoch`, then the scheduler's step, then :func:`evaluate` on
    ``val_loader``.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    # --- resolve the options once -------------------------------------------------------
    dev = get_device(device)
    if _is_distributed() and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    amp_dtype = _amp_dtype(amp, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype == torch.float16 and dev.type == "cuda")
    step_model = model
    if _is_distributed() and not isinstance(model, nn.parallel.DistributedDataParallel):
        # gradients are averaged over processes in backward: each process steps identically
        step_model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    if compile_model:
        step_model = torch.compile(step_model)
    rank0 = not _is_distributed() or torch.distributed.get_rank() == 0
    pbar = _progress_bar(train_loader, epochs) if verbose and rank0 else None
    # --- the epochs -------------------------------------------------------------------------
    history = History()
    try:
        for epoch in range(1, epochs + 1):
            _set_epoch(train_loader, epoch)
            t0 = time.perf_counter()
            lr_now = float(optimizer.param_groups[0]["lr"])
            tr = train_one_epoch(step_model, train_loader, optimizer, loss_fn, dev, amp_dtype, scaler,
                                 channels_last, batch_transform, aux_weight, grad_clip, pbar, log_every)
            if scheduler is not None:
                scheduler.step()
            va = (evaluate(model, val_loader, loss_fn, dev, amp_dtype, channels_last) if val_loader is not None
                  else {"loss": float("nan"), "acc": float("nan")})
            history.append(epoch=epoch, train_loss=tr["loss"], train_acc=tr["acc"], val_loss=va["loss"],
                           val_acc=va["acc"], seconds=time.perf_counter() - t0, lr=lr_now)
            if pbar is not None:
                pbar.set_postfix(epoch=epoch, loss=f"{tr['loss']:.4f}", val_acc=f"{va['acc']:.4f}")
            if checkpoint is not None and rank0:
                save_checkpoint(checkpoint, model, optimizer, history)
    finally:
        if pbar is not None:
            pbar.close()
    return history


def _progress_bar(loader: Iterable, epochs: int):
    from tqdm.auto import tqdm

    try:
        total = epochs * len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    return tqdm(total=total, desc="fit", unit="batch", leave=True)


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell a DistributedSampler (the loader's own, or one under a BatchSampler) the epoch, so
    that it shuffles differently each epoch."""
    sampler, batch_sampler = getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)
    for cand in (sampler, getattr(sampler, "sampler", None), getattr(batch_sampler, "sampler", None)):
        if hasattr(cand, "set_epoch"):
            cand.set_epoch(epoch)
            return


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group that ``torchrun`` set up (reads ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``...). ``backend`` defaults to NCCL with CUDA, gloo without.
    Returns ``(rank, world_size)``; ``(0, 1)`` when not launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not torch.distributed.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group(backend=backend)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    history: History | None = None,
    **meta: Any,
) -> Path:
    """Save the model's state_dict (and optionally the optimizer's, the history and any JSON-able
    ``meta``) to ``path``. The file is written atomically: an interrupted save never leaves a
    half-written checkpoint in place of a good one."""
    state = {
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": history.to_dict() if history is not None else None,
        "meta": meta,
        "torch": str(torch.__version__),
    }
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; fill ``model`` and ``optimizer`` when
    given. Returns the stored dict, with ``"history"`` as a :class:`History` (or ``None``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path.resolve()}: train the model first or check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{path} is not a checkpoint written by convnets.train.save_checkpoint: {e}") from e
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint written by convnets.train.save_checkpoint")
    if model is not None:
        _unwrap(model).load_state_dict(state["model"], strict=strict)
    if optimizer is not None:
        if state.get("optimizer") is None:
            raise ValueError(f"{path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
    if state.get("history") is not None:
        state["history"] = History.from_dict(state["history"])
    return state
