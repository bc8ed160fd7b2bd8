"""Receptive-field calculator for a stack of convolution and pooling layers, layer by layer.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``):
why two stacked 3x3 convolutions see as far as one 5x5 (VGG), and how far a network's last
layer sees.

For a chain of sliding-window layers with kernel ``k``, stride ``s``, padding ``p`` and dilation
``d``, the window of one output unit in the input grows by the recurrence

.. math::

    r_l = r_{l-1} + (k_l - 1)\\, d_l\\, j_{l-1}, \\qquad j_l = j_{l-1}\\, s_l, \\qquad
    a_l = a_{l-1} - p_l\\, j_{l-1},

from ``r_0 = 1`` (one pixel), ``j_0 = 1`` (the jump: input pixels between neighbouring units)
and ``a_0 = 0`` (the left edge of unit 0's window; negative when it reaches into the padding).
Element-wise layers (activations, batch norm, LRN, dropout) leave the window as it is.

This module handles a *chain* (an ``nn.Sequential``, possibly nested, or a list of
``(kernel, stride[, padding[, dilation]])`` tuples) and returns one row per layer. For graphs
with branches (Inception, residual blocks) use :func:`convnets.interpret.receptive_field`,
which traces the forward pass.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence, Union

from torch import nn

__all__ = ["RFRow", "receptive_field_table", "receptive_field", "layer_windows", "as_records"]

Spec = Union[tuple[int, int], tuple[int, int, int], tuple[int, int, int, int]]

_WINDOW = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
           nn.AvgPool3d)
# Layers after which every unit sees the whole input: the table stops there.
_GLOBAL = (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


@dataclass(frozen=True)
class RFRow:
    """One layer of the table: its window parameters and the receptive field of its output.

    ``size``: side of the input window one output unit sees; ``jump``: input pixels between
    neighbouring output units; ``start``: left edge of unit 0's window (negative in padding).
    """

    name: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    size: int
    jump: int
    start: int


def _one(v, what: str) -> int:
    """A square layer's single number (``3`` or ``(3, 3)``); non-square raises."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"{what} {tuple(v)} is not the same along every axis; this calculator "
                             "handles square windows only (use convnets.interpret.receptive_field)")
        v = v[0]
    if not isinstance(v, int):
        raise TypeError(f"{what} must be an int; got {v!r}")
    return v


def layer_windows(layers: nn.Module | Iterable[Spec]) -> list[tuple[str, int, int, int, int]]:
    """``(name, kernel, stride, padding, dilation)`` of each sliding-window layer of a chain.

    Modules are walked in registration order (which is the order of execution for an
    ``nn.Sequential``); the walk stops at the first global layer (``Linear``, ``Flatten``,
    adaptive pooling).
    """
    out: list[tuple[str, int, int, int, int]] = []
    if isinstance(layers, nn.Module):
        for name, m in layers.named_modules():
            if next(m.children(), None) is not None:
                continue  # a container: its leaves come next
            if isinstance(m, _GLOBAL):
                break
            if isinstance(m, _WINDOW):
                k = _one(m.kernel_size, "kernel_size")
                s = _one(m.stride if m.stride is not None else m.kernel_size, "stride")
                p = m.padding
                if isinstance(p, str):
                    if p == "valid":
                        p = 0
                    elif p == "same":
                        p = (k - 1) * _one(getattr(m, "dilation", 1), "dilation") // 2
                    else:  # pragma: no cover - torch accepts only these two strings
                        raise ValueError(f"unknown padding {p!r} in layer {name}")
                p = _one(p, "padding")
                d = _one(getattr(m, "dilation", 1), "dilation")
                out.append((name or type(m).__name__, k, s, p, d))
        return out
    for i, spec in enumerate(layers):
        if not isinstance(spec, (tuple, list)) or not 2 <= len(spec) <= 4 or not all(isinstance(v, int) for v in spec):
            raise TypeError(f"layer {i}: expected (kernel, stride[, padding[, dilation]]) ints; got {spec!r}")
        k, s, p, d = list(spec) + [0, 1][len(spec) - 2:]  # defaults: padding 0, dilation 1
        out.append((str(i), k, s, p, d))
    return out


def receptive_field_table(layers: nn.Module | Sequence[Spec]) -> list[RFRow]:
    """One :class:`RFRow` per sliding-window layer of a chain: the receptive field after it.

    ``layers``: an ``nn.Sequential`` (nested ones are flattened) or a list of
    ``(kernel, stride[, padding[, dilation]])`` tuples. ``[asdict(r) for r in table]`` makes a
    ``pandas.DataFrame``.

    >>> [r.size for r in receptive_field_table([(3, 1, 1), (3, 1, 1)])]
    [3, 5]
    """
    rows: list[RFRow] = []
    size, jump, start = 1, 1, 0
    for name, k, s, p, d in layer_windows(layers):
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ValueError(f"layer {name}: kernel, stride, dilation must be >= 1 and padding >= 0; "
                             f"got kernel={k}, stride={s}, padding={p}, dilation={d}")
        start -= p * jump
        size += (k - 1) * d * jump
        jump *= s
        rows.append(RFRow(name, k, s, p, d, size, jump, start))
    return rows


def receptive_field(layers: nn.Module | Sequence[Spec]) -> int:
    """Side of the input window seen by one unit of the chain's last sliding-window layer
    (1 for a chain without any)."""
    table = receptive_field_table(layers)
    return table[-1].size if table else 1


def as_records(table: list[RFRow]) -> list[dict]:
    """The table as a list of dicts (for ``pandas.DataFrame``)."""
    return [asdict(r) for r in table]

