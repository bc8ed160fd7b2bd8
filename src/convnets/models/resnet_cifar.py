"""The CIFAR-style residual and plain networks of He et al. (2016, Sec. 4.2), depth ``6n + 2``.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), where :func:`plain_cifar` and :func:`resnet_cifar` of equal
depth are trained identically to reproduce the *degradation problem*.

Architecture (paper, Sec. 4.2): a 3x3 convolution with ``width`` (16) filters, then three stages
of ``n`` blocks of two 3x3 convolutions each, with ``width``, ``2 width``, ``4 width`` filters;
stages 2 and 3 start with a stride-2 convolution; global average pooling; one linear layer.
Counting the first convolution and the linear layer, that is ``6n + 2`` weighted layers: 20, 32,
44, 56, 110 for ``n = 3, 5, 7, 9, 18``. Any ``depth = 6n + 2`` (8, 14, ...) is accepted.

Module names: ``conv1``, ``bn1``, ``layer1``, ``layer2``, ``layer3``, ``fc`` (one parameter
group per stage for discriminative learning rates).

Shortcuts where the shape changes: ``shortcut="A"`` (the paper's CIFAR choice) subsamples the
input by the stride and pads the new channels with zeros, adding no parameter; ``"B"`` is a 1x1
projection with BatchNorm, as in the ImageNet ResNets.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ConvNet, register_model
from .resnet import BasicBlock, conv1x1, conv3x3, init_resnet_

__all__ = ["ZeroPadShortcut", "PlainBlock", "CifarResNet", "resnet_cifar", "plain_cifar", "cifar_depths"]


class ZeroPadShortcut(nn.Module):
    """The paper's option-A shortcut: ``x[:, :, ::stride, ::stride]`` with zero channels appended.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, ceil(H/stride), ceil(W/stride))``; no parameter.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"zero padding can only add channels: {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dims first: (W_left, W_right, H_top, H_bottom, C_front, C_back)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}, stride={self.stride}"


class PlainBlock(BasicBlock):
    """:class:`~convnets.models.resnet.BasicBlock` without its shortcut: ``relu(F(x))``.

    Same layers and parameters as a residual block of option A, so a plain and a residual
    network of equal depth differ only by the additions.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__(in_channels, channels, stride, downsample=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x))


def cifar_depths() -> tuple[int, ...]:
    """The depths of the paper's Table 6: 20, 32, 44, 56, 110 (and 1202)."""
    return (20, 32, 44, 56, 110, 1202)


class CifarResNet(ConvNet):
    """CIFAR-style network of depth ``6n + 2``, residual or plain.

    ``(N, in_channels, H, W)`` -> logits ``(N, num_classes)``; the feature map is
    ``(N, 4 width, ceil(H/4), ceil(W/4))`` and global average pooling makes any size work
    (28x28 MNIST, 32x32 CIFAR, 56x56 ...).
    """

    classifier_name = "fc"

    def __init__(self, depth: int = 20, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 residual: bool = True, shortcut: Literal["A", "B"] = "A", zero_init_residual: bool = False):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...); got {depth!r}")
        for name, v in (("in_channels", in_channels), ("width", width)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding, no parameters) or 'B' (1x1 projection); got {shortcut!r}")
        self.depth, self.residual, self.shortcut, self.width = depth, residual, shortcut, width
        n = (depth - 2) // 6
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = width
        self.layer1 = self._make_layer(width, n, 1)
        self.layer2 = self._make_layer(2 * width, n, 2)
        self.layer3 = self._make_layer(4 * width, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 4 * width
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        init_resnet_(self, zero_init_residual and residual)

    def _make_layer(self, channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            if not self.residual:
                layers.append(PlainBlock(self._inplanes, channels, s))
            else:
                down = None
                if s != 1 or self._inplanes != channels:
                    down = (ZeroPadShortcut(self._inplanes, channels, s) if self.shortcut == "A" else
                            nn.Sequential(conv1x1(self._inplanes, channels, s), nn.BatchNorm2d(channels)))
                layers.append(BasicBlock(self._inplanes, channels, s, down))
            self._inplanes = channels
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 4 width, ceil(H/4), ceil(W/4))``."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling and the linear layer: ``(N, 4 width, h, w)`` -> ``(N, K)``."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def extra_repr(self) -> str:
        kind = f"residual, shortcut {self.shortcut}" if self.residual else "plain"
        return f"depth={self.depth}, width={self.width}, {kind}"


@register_model(input_size=(1, 28, 28))
def resnet_cifar(*, num_classes: int = 10, in_channels: int = 1, depth: int = 20, width: int = 16,
                 shortcut: Literal["A", "B"] = "A", zero_init_residual: bool = False) -> CifarResNet:
    """The CIFAR ResNet of He et al. (2016, Sec. 4.2) with ``depth = 6n + 2`` layers.

    With ``in_channels=3, width=16`` and option-A shortcuts, ResNet-20/32/44/56/110 have
    269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 parameters (paper, Table 6: 0.27M / 0.46M /
    0.66M / 0.85M / 1.7M); option B adds 2,752. ``in_channels`` defaults to 1 (MNIST), the
    book's data.
    """
    return CifarResNet(depth, in_channels, num_classes, width, True, shortcut, zero_init_residual)


@register_model(input_size=(1, 28, 28))
def plain_cifar(*, num_classes: int = 10, in_channels: int = 1, depth: int = 20, width: int = 16) -> CifarResNet:
    """The plain counterpart of :func:`resnet_cifar` (He et al., 2016, Sec. 4.2, Fig. 6 left):
    the same layers without shortcuts (and so the same parameters as option A)."""
    return CifarResNet(depth, in_channels, num_classes, width, residual=False)
