"""Multiply-accumulates (MACs) and FLOPs of a model, counted by :mod:`torch.utils.flop_counter`.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``).

We do not write a counter of our own: torch's :class:`~torch.utils.flop_counter.FlopCounterMode`
intercepts every matrix product and convolution the forward pass dispatches and adds up
``2 * multiply-adds`` for each. So, as in the papers' tables:

- ``count_macs`` = multiply-adds of convolutions and linear layers (``count_flops // 2``);
- element-wise work (ReLU, pooling, batch norm, adding a bias) is not counted, and the count is
  for **one** image unless ``input_size`` says otherwise.

    >>> from convnets.flops import count_macs                                  # doctest: +SKIP
    >>> count_macs(torchvision.models.alexnet(), (3, 224, 224)) / 1e9          # doctest: +SKIP
    0.714...
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .utils import eval_mode, model_device

__all__ = ["count_flops", "count_macs", "macs_by_module"]


def _example_input(model: nn.Module, input_size: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """A zero tensor ``(N, C, H, W)`` on the model's device and dtype (``(C, H, W)`` gets N = 1)."""
    p = next(iter(model.parameters()), None)
    device = model_device(model)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    if isinstance(input_size, torch.Tensor):
        return input_size.to(device)
    if not isinstance(input_size, (tuple, list)) or not all(isinstance(s, int) and s > 0 for s in input_size):
        raise TypeError(
            f"input_size must be a tuple of positive ints such as (3, 224, 224) or (1, 3, 224, 224), "
            f"or an example tensor; got {input_size!r}"
        )
    size = tuple(input_size)
    if len(size) == 3:
        size = (1, *size)
    return torch.zeros(size, device=device, dtype=dtype)


def _run(model: nn.Module, input_size: Sequence[int] | torch.Tensor, depth: int) -> FlopCounterMode:
    x = _example_input(model, input_size)
    # eval: GoogLeNet-style auxiliary heads are off, as at test time
    with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False, depth=depth) as counter:
        model(x)
    return counter


def count_flops(model: nn.Module, input_size: Sequence[int] | torch.Tensor) -> int:
    """FLOPs of one forward pass in eval mode (2 per multiply-add; convolutions and matmuls only).

    ``input_size``: ``(C, H, W)`` (one image), ``(N, C, H, W)``, or an example tensor.
    """
    return int(_run(model, input_size, depth=1).get_total_flops())


def count_macs(model: nn.Module, input_size: Sequence[int] | torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass in eval mode: what the papers call
    "multiply-adds" (VGG, GoogLeNet) or "FLOPs" (ResNet's Table 1).

    ``input_size``: ``(C, H, W)`` (one image), ``(N, C, H, W)``, or an example tensor.
    """
    return count_flops(model, input_size) // 2


def macs_by_module(model: nn.Module, input_size: Sequence[int] | torch.Tensor, depth: int = 1) -> dict[str, int]:
    """MACs of each submodule down to ``depth`` levels below the model, keyed by its dotted name
    (``""`` is the whole model); the children of a module add up to its own count.

    ``macs_by_module(vgg, (3, 224, 224), depth=2)`` gives ``{"": ..., "features": ...,
    "features.0": ..., "classifier.0": ...}``.
    """
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer; got {depth!r}")
    counts = _run(model, input_size, depth=depth + 1).get_flop_counts()
    root = type(model).__name__
    out: dict[str, int] = {}
    for name, _ in model.named_modules():  # module order, parents before children
        if name and name.count(".") >= depth:
            continue
        key = f"{root}.{name}" if name else root
        if key in counts:
            out[name] = int(sum(counts[key].values())) // 2
    return out
