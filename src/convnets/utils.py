"""Small helpers every chapter uses: device choice, parameter counts, a model summary, and the
plumbing every inference function shares (eval mode, the model's device, batches of images,
the logits of a model's output, atomic file writes).

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).
This module imports nothing from the rest of :mod:`convnets`: every other module may use it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

__all__ = [
    "get_device",
    "model_device",
    "eval_mode",
    "split_outputs",
    "iter_batches",
    "atomic_write",
    "count_parameters",
    "parameter_counts",
    "summary",
    "LayerInfo",
    "Summary",
]


def get_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    ``None`` or ``"auto"`` picks CUDA if present, then Apple's MPS, then the CPU. Anything else
    is passed to :class:`torch.device`; asking for CUDA where there is none raises a clear error.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was asked for, but this PyTorch sees no CUDA GPU; "
            "use device='cpu' or device='auto'"
        )
    return dev


def model_device(model: nn.Module, device: str | torch.device | None = None) -> torch.device:
    """The device to run ``model`` on: ``device`` when given (resolved by :func:`get_device`,
    so ``"auto"`` works), else the device of the model's first parameter or buffer, else the CPU."""
    if device is not None:
        return get_device(device)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` runs the block with ``model`` in eval mode and restores its
    previous mode (``model.training``) afterwards, also when the block raises.

    It does not turn gradients off: combine it with :func:`torch.no_grad` where none are needed.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def split_outputs(out: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``(logits, auxiliary logits)`` from a model's output.

    A tensor ``(N, K)`` is the logits (no auxiliary outputs); a tuple or list of tensors is read
    as the main logits followed by auxiliary logits (GoogLeNet in training mode returns three).
    Anything else raises ``TypeError``.
    """
    if isinstance(out, torch.Tensor):
        return out, ()
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        return out[0], tuple(out[1:])
    raise TypeError(
        f"the model returned {type(out).__name__}; expected a tensor of logits (N, classes), "
        "or a tuple whose first element is the logits and the rest auxiliary logits"
    )


def iter_batches(data: torch.Tensor | Iterable, batch_size: int = 1000
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Batches ``(X, y)`` of images from a tensor ``(N, C, H, W)`` cut into chunks of
    ``batch_size`` (``y`` is ``None``), or from a loader that yields ``(X, y, ...)`` batches or
    bare image batches (``y`` is then ``None``). Nothing is moved to a device."""
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(data.shape)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size], None
        return
    for batch in data:
        if isinstance(batch, (tuple, list)):
            if not batch:
                raise TypeError("the loader gave an empty batch")
            yield batch[0], (batch[1] if len(batch) > 1 else None)
        else:
            yield batch, None


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``path`` so that readers see the old file or the whole new one, never half of it.

    ``content`` is text, bytes, or a function that writes a file at the path it is given (e.g.
    ``lambda p: torch.save(state, p)``). The data goes to a temporary file in the same folder,
    which then replaces ``path`` (:func:`os.replace`); on failure the temporary file is removed.
    Parent folders are created; a new file gets mode 0644, a replaced one keeps its mode.
    Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(tmp_name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as f:
                f.write(content)
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared tensor counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts."""
    return count_parameters(model), count_parameters(model, trainable_only=True)


@dataclass
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


class Summary(list):
    """A list of :class:`LayerInfo`, one per leaf module that ran, printable as a table."""

    total: int = 0
    trainable: int = 0

    def __str__(self) -> str:
        w = max([len(r.name) for r in self] + [5])
        k = max([len(r.kind) for r in self] + [4])
        head = f"{'layer':<{w}}  {'type':<{k}}  {'output shape':<22} {'params':>12}"
        lines = [head, "-" * len(head)]
        for r in self:
            lines.append(f"{r.name:<{w}}  {r.kind:<{k}}  {str(list(r.output_shape)):<22} {r.params:>12,}")
        lines += ["-" * len(head), f"total parameters: {self.total:,} (trainable {self.trainable:,})"]
        return "\n".join(lines)

    def __repr__(self) -> str:  # shown by Jupyter as the cell's result
        return str(self)


def summary(model: nn.Module, input_size: tuple[int, ...], device: str | torch.device | None = "cpu") -> Summary:
    """One line per leaf module that runs on a random input of ``input_size`` (with the batch
    dimension, e.g. ``(1, 1, 28, 28)``): its name, type, output shape and own parameters.

    The model is run in eval mode under ``torch.no_grad()`` and its mode is restored after.
    """
    dev = get_device(device)
    rows = Summary()
    hooks = []

    def make_hook(name: str):
        def hook(mod, inp, out):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            rows.append(LayerInfo(name, type(mod).__name__, shape, sum(p.numel() for p in mod.parameters(recurse=False))))
        return hook

    for name, mod in model.named_modules():
        if not any(True for _ in mod.children()):
            hooks.append(mod.register_forward_hook(make_hook(name)))
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.randn(*input_size, device=dev))
    finally:
        for h in hooks:
            h.remove()
    rows.total, rows.trainable = parameter_counts(model)
    return rows
