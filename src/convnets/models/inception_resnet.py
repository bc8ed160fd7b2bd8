"""Inception-ResNet (Szegedy, Ioffe, Vanhoucke and Alemi, 2017): Inception blocks with a shortcut.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

An Inception-ResNet block runs a few parallel branches of small convolutions (as in GoogLeNet's
Inception module), concatenates them, maps the result back to the input's width with a *linear*
1x1 convolution, scales it down and adds it to the input: ``y = relu(x + s * F(x))``. The paper
found that very wide residual Inception networks "died" early in training unless the residual was
scaled by a factor between 0.1 and 0.3 before the addition.

:class:`InceptionResNetA` is the 35x35-grid block of Inception-ResNet-v2 (320 channels, branches
of 32, 32-32 and 32-48-64 channels); its widths are arguments.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ConvBN", "InceptionResNetA"]


class ConvBN(nn.Sequential):
    """``conv (no bias) - BN - ReLU``: ``(N, in, H, W)`` -> ``(N, out, H, W)`` (same padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)


class InceptionResNetA(nn.Module):
    """``relu(x + scale * up(cat(b0(x), b1(x), b2(x))))``; ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    ``b0``: 1x1; ``b1``: 1x1 then 3x3; ``b2``: 1x1, 3x3, 3x3 (widths ``branches``); ``up``: a 1x1
    convolution with bias and no activation back to ``channels``.
    """

    def __init__(self, channels: int = 320, branches: Sequence[Sequence[int]] = ((32,), (32, 32), (32, 48, 64)),
                 scale: float = 0.17):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer; got {channels!r}")
        self.scale = float(scale)
        paths = []
        for widths in branches:
            layers, c = [], channels
            for i, w in enumerate(widths):
                layers.append(ConvBN(c, w, 1 if i == 0 else 3))
                c = w
            paths.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(paths)
        self.up = nn.Conv2d(sum(w[-1] for w in branches), channels, 1)
        self.relu = nn.ReLU()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``F(x)``: the branches, concatenated and mapped back to ``channels`` (before scaling)."""
        return self.up(torch.cat([b(x) for b in self.branches], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.scale * self.residual(x))
