"""Small building blocks the model families share.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``): the
3x3 convolution is VGG's unit, the 1x1 convolution GoogLeNet's channel reduction; ResNet and
Xception reuse both. "ResNet and beyond" (``book/06-resnet-and-beyond.md``) uses the rest:
:func:`make_divisible` (MobileNetV2's and EfficientNet's channel rounding) and
:func:`drop_path` (stochastic depth).

``conv3x3`` and ``conv1x1`` have torchvision's argument order and defaults (no bias: a batch norm
follows them in modern nets); pass ``bias=True`` for the pre-batch-norm architectures.
:class:`ConvNormAct` is the one "convolution, optional batch norm, activation" block.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["conv3x3", "conv1x1", "ConvNormAct", "make_divisible", "drop_path"]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, dilation: int = 1,
            bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with "same" padding: ``(N, in, H, W)`` -> ``(N, out, H/stride, W/stride)``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, dilation=dilation, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution (a linear map of channels at every pixel):
    ``(N, in, H, W)`` -> ``(N, out, H/stride, W/stride)``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=bias)


class ConvNormAct(nn.Sequential):
    """Convolution, optional batch norm, optional activation:
    ``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``.

    ``padding`` defaults to ``(kernel_size - 1) // 2`` ("same" for odd kernels at stride 1).
    The convolution has a bias only without a norm (the norm's shift plays that role), unless
    ``bias`` says otherwise. ``activation`` is a module class (``nn.ReLU``, ``nn.ReLU6``,
    ``nn.SiLU``; built in place where it allows) or ``None``.

    Submodule names follow the torchvision model each family loads weights from: with
    ``named=True`` they are ``conv``, ``bn`` and ``act`` (GoogLeNet's ``BasicConv2d``), else
    ``0``, ``1``, ``2`` (``Conv2dNormActivation``, MobileNetV2 and EfficientNet).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, batch_norm: bool = True,
                 activation: Callable[..., nn.Module] | None = nn.ReLU, bias: bool | None = None,
                 named: bool = False):
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2
        layers: list[tuple[str, nn.Module]] = [
            ("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                               groups=groups, bias=(not batch_norm) if bias is None else bias)),
        ]
        if batch_norm:
            layers.append(("bn", nn.BatchNorm2d(out_channels)))
        if activation is not None:
            try:  # in place where the activation allows it, as torchvision: one tensor fewer
                act = activation(inplace=True)
            except TypeError:
                act = activation()
            layers.append(("act", act))
        for i, (name, module) in enumerate(layers):
            self.add_module(name if named else str(i), module)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (at least ``min_value``),
    never more than 10% below ``v``: the rule of the MobileNet and EfficientNet reference code."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth (Huang et al., 2016): zero the residual branch ``x (N, ...)`` of whole
    examples with probability ``p`` in training, rescaling the kept ones by ``1 / (1 - p)``; the
    identity in evaluation. :func:`torchvision.ops.stochastic_depth` in ``"row"`` mode."""
    from torchvision.ops import stochastic_depth

    return stochastic_depth(x, p, "row", training)
