"""One training loop for the whole book: any device, a progress bar, a history, checkpoints.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).

    >>> history = fit(net, train_loader, test_loader, epochs=5, lr=1e-3)   # doctest: +SKIP
    >>> history.plot()                                                      # doctest: +SKIP

The loop keeps the GPU busy: the loss and the number of correct predictions are summed on the
device and read back once per epoch (and when the progress bar refreshes), never per step.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from .utils import get_device

__all__ = [
    "seed_everything",
    "History",
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
        _atomic_write_text(Path(path), json.dumps(self.to_dict()))

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
        """Loss and accuracy per epoch, train (solid) and validation (dashed). Returns the axes."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
        tag = f"{label} " if label else ""
        for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
            (line,) = ax.plot(self.epoch, getattr(self, f"train_{key}"), label=f"{tag}train")
            vals = getattr(self, f"val_{key}")
            if not all(np.isnan(vals)):
                ax.plot(self.epoch, vals, "--", color=line.get_color(), label=f"{tag}validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        if title:
            axes[0].figure.suptitle(title)
        return axes

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


def _split_outputs(out: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Main logits and auxiliary logits (GoogLeNet-style models return several in training)."""
    if isinstance(out, torch.Tensor):
        return out, ()
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return out[0], tuple(out[1:])
    raise TypeError(
        f"the model returned {type(out).__name__}; fit() expects a tensor of logits (N, classes), "
        "or a tuple whose first element is the logits and the rest auxiliary logits"
    )


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError("each batch from the loader must be a pair (images, labels)")
    X, y = batch[0], batch[1]
    nb = device.type == "cuda"
    X = X.to(device, non_blocking=nb)
    if channels_last and X.ndim == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X, y.to(device, non_blocking=nb)


def _amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
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


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable | None = None,
    device: str | torch.device | None = None,
    amp: bool | str = False,
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode (the mode is restored).

    Returns ``{"loss": ..., "acc": ..., "n": number of examples}``.
    """
    dev = get_device(device) if device is not None else _model_device(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    amp_dtype = _amp_dtype(amp, dev)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=dev, dtype=torch.float64)
    correct = torch.zeros((), device=dev, dtype=torch.int64)
    n = 0
    try:
        for batch in loader:
            X, y = _to_device(batch, dev, channels_last)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits, _ = _split_outputs(model(X))
                loss = loss_fn(logits.float(), y)
            total_loss += loss.detach().double() * len(y)
            correct += (logits.argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum()
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("the loader gave no batches: nothing to evaluate")
    n_all, loss_all, correct_all = _all_reduce(n, total_loss, correct)
    return {"loss": loss_all / n_all, "acc": correct_all / n_all, "n": n_all}


@torch.no_grad()
def predict(
    model: nn.Module,
    data: torch.Tensor | Iterable,
    device: str | torch.device | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """Logits ``(N, K)`` on the CPU for images ``(N, C, H, W)`` or a loader of ``(X, y)`` batches,
    computed in eval mode (the mode is restored)."""
    dev = get_device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    outs = []
    try:
        if isinstance(data, torch.Tensor):
            chunks = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        else:
            chunks = (b[0] if isinstance(b, (tuple, list)) else b for b in data)
        for X in chunks:
            outs.append(_split_outputs(model(X.to(dev)))[0].float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce(n: int, total_loss: torch.Tensor, correct: torch.Tensor) -> tuple[int, float, float]:
    """Sum the epoch's counters over processes (a no-op without torch.distributed)."""
    if _is_distributed():
        t = torch.stack([total_loss.double(), correct.double(), torch.tensor(float(n), device=total_loss.device, dtype=torch.float64)])
        torch.distributed.all_reduce(t)
        return int(t[2].item()), t[0].item(), t[1].item()
    return n, total_loss.item(), float(correct.item())


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
    compile: bool = False,
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
    channels_last, compile : GPU speed options (NHWC memory layout, :func:`torch.compile`).
    batch_transform : ``f(X, y) -> (X, y)`` applied to each training batch on the device.
    checkpoint : a path; the model, optimizer and history are saved there after every epoch.
    log_every : steps between progress-bar refreshes (the only per-step reads from the device).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
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
    if compile:
        step_model = torch.compile(step_model)
    history = History()
    rank0 = not _is_distributed() or torch.distributed.get_rank() == 0
    show = verbose and rank0
    pbar = None
    if show:
        from tqdm.auto import tqdm

        try:
            total = epochs * len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            total = None
        pbar = tqdm(total=total, desc="fit", unit="batch", leave=True)
    try:
        for epoch in range(1, epochs + 1):
            _set_epoch(train_loader, epoch)
            model.train()
            t0 = time.perf_counter()
            total_loss = torch.zeros((), device=dev, dtype=torch.float64)
            correct = torch.zeros((), device=dev, dtype=torch.int64)
            n = 0
            for step, batch in enumerate(train_loader):
                X, y = _to_device(batch, dev, channels_last)
                if batch_transform is not None:
                    X, y = batch_transform(X, y)
                with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits, aux = _split_outputs(step_model(X))
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
                total_loss += loss.detach().double() * len(y)
                correct += (logits.detach().argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum()
                n += len(y)
                if pbar is not None:
                    pbar.update(1)
                    if step % log_every == 0:
                        pbar.set_postfix(epoch=epoch, loss=f"{total_loss.item() / n:.4f}")
            if n == 0:
                raise ValueError("the training loader gave no batches")
            n_all, loss_all, correct_all = _all_reduce(n, total_loss, correct)
            row = {"epoch": epoch, "train_loss": loss_all / n_all, "train_acc": correct_all / n_all,
                   "val_loss": float("nan"), "val_acc": float("nan"),
                   "lr": float(optimizer.param_groups[0]["lr"])}
            if scheduler is not None:
                scheduler.step()
            if val_loader is not None:
                ev = evaluate(model, val_loader, loss_fn, dev, amp, channels_last)
                row["val_loss"], row["val_acc"] = ev["loss"], ev["acc"]
            row["seconds"] = time.perf_counter() - t0
            history.append(**row)
            if pbar is not None:
                pbar.set_postfix(epoch=epoch, loss=f"{row['train_loss']:.4f}", val_acc=f"{row['val_acc']:.4f}")
            if checkpoint is not None and rank0:
                save_checkpoint(checkpoint, model, optimizer, history)
    finally:
        if pbar is not None:
            pbar.close()
    return history


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


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": history.to_dict() if history is not None else None,
        "meta": meta,
        "torch": str(torch.__version__),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


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
