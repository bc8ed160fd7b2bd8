"""Small building blocks the model families share.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``): the
3x3 convolution is VGG's unit, the 1x1 convolution GoogLeNet's channel reduction; ResNet and
Xception reuse both.

``conv3x3`` and ``conv1x1`` have torchvision's signatures and defaults (no bias: a batch norm
follows them in modern nets); pass ``bias=True`` for the pre-batch-norm architectures.
"""
from __future__ import annotations

from torch import nn

__all__ = ["conv3x3", "conv1x1", "ConvAct"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1,
            bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with "same" padding: ``(N, in, H, W)`` -> ``(N, out, H/stride, W/stride)``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, dilation=dilation, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution (a linear map of channels at every pixel):
    ``(N, in, H, W)`` -> ``(N, out, H/stride, W/stride)``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias)


class ConvAct(nn.Sequential):
    """Convolution, optional batch norm, ReLU: ``(N, in, H, W)`` -> ``(N, out, H', W')``.

    Submodules are named ``conv``, ``bn`` (only when ``batch_norm=True``) and ``act``. Without
    batch norm the convolution has a bias (the pre-2015 architectures: GoogLeNet as published);
    with it, none (the norm's shift plays that role).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, batch_norm: bool = False):
        if padding is None:
            padding = kernel_size // 2
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=not batch_norm)
        if batch_norm:
            self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
