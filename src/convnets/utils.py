"""Small helpers every chapter uses: device choice, parameter counts, a model summary.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["get_device", "count_parameters", "parameter_counts", "summary", "LayerInfo", "Summary"]


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
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(*input_size, device=dev))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rows.total, rows.trainable = parameter_counts(model)
    return rows
