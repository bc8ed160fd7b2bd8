"""Squeeze-and-excitation (Hu et al., 2018) and SE-ResNet-50.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

An SE block re-weights the channels of a feature map by a gate computed from the map itself:
*squeeze* by global average pooling to ``(N, C, 1, 1)``, *excite* with two 1x1 convolutions
(``C -> C/r -> C``, ReLU between, sigmoid after), then multiply. It costs ``2 C^2 / r + C + C/r``
parameters and almost no multiply-adds (it works on ``1 x 1`` maps).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ._base import register_model
from .resnet import Bottleneck, ResNet

__all__ = ["SqueezeExcitation", "SEBottleneck", "se_resnet50"]


class SqueezeExcitation(nn.Module):
    """``x * sigmoid(fc2(act(fc1(avgpool(x)))))``: ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    ``squeeze_channels`` is the bottleneck width ``C/r``. Module names match torchvision's
    ``ops.SqueezeExcitation`` (``fc1``, ``fc2``: 1x1 convolutions with bias).
    """

    def __init__(self, channels: int, squeeze_channels: int,
                 activation: Callable[[], nn.Module] = nn.ReLU):
        super().__init__()
        if channels < 1 or squeeze_channels < 1:
            raise ValueError(f"channels and squeeze_channels must be positive; got {channels}, {squeeze_channels}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate ``(N, C, 1, 1)``, values in ``(0, 1)``."""
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale(x)


class SEBottleneck(Bottleneck):
    """A ResNet bottleneck whose residual branch ends with an SE block (reduction 16), applied
    before the addition (Hu et al., 2018, Fig. 3)."""

    reduction = 16

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, stride_in_1x1: bool = False):
        super().__init__(in_channels, channels, stride, downsample, stride_in_1x1)
        out = channels * self.expansion
        self.se = SqueezeExcitation(out, out // self.reduction)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(super().residual(x))


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def se_resnet50(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-50 (Hu et al., 2018): ResNet-50 with an SE block (r = 16) in every bottleneck;
    28,088,024 parameters (timm's ``seresnet50`` counts the same; paper: ~28M)."""
    return ResNet(SEBottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)
