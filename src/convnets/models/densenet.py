"""DenseNet (Huang et al., 2017), weight-compatible with torchvision's ``densenet121/169``.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

Where a residual block *adds* its input to its output, a dense block *concatenates*: layer
``l`` of a block sees the feature maps of every earlier layer of the block and contributes
``growth_rate`` new channels. Each layer is a bottleneck ``BN-ReLU-1x1 conv (bn_size *
growth_rate) - BN-ReLU-3x3 conv (growth_rate)``; between blocks a transition ``BN-ReLU-1x1 conv``
halves the channels and a 2x2 average pooling halves the resolution.

The module names follow torchvision's (``features.conv0``, ``features.denseblock1.denselayer1.
norm1`` ... ``features.norm5``, ``classifier``), so a torchvision ``state_dict`` loads with
``strict=True`` (the tests check it, and that the outputs agree).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet", "densenet", "densenet121", "densenet169"]


class DenseLayer(nn.Module):
    """``BN-ReLU-conv1x1`` to ``bn_size * growth_rate`` channels, ``BN-ReLU-conv3x3`` to
    ``growth_rate``: a list of ``(N, C_i, H, W)`` maps (concatenated, ``sum C_i = in_channels``)
    -> ``(N, growth_rate, H, W)``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, inputs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        x = torch.cat(list(inputs), 1) if not isinstance(inputs, torch.Tensor) else inputs
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers named ``denselayer1`` ...: ``(N, C, H, W)`` ->
    ``(N, C + num_layers * growth_rate, H, W)`` (the input and every layer's output, concatenated)."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x]
        for layer in self.values():
            maps.append(layer(maps))
        return torch.cat(maps, 1)


class Transition(nn.Sequential):
    """``BN-ReLU-conv1x1`` then 2x2 average pooling: ``(N, C, H, W)`` -> ``(N, C_out, H/2, W/2)``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(ConvNet):
    """ImageNet DenseNet-BC: 7x7/2 stem and 3x3/2 max pooling, dense blocks separated by
    transitions (compression 0.5), a last BN, ReLU, global average pooling and one linear layer.

    ``(N, in_channels, H, W)`` -> ``(N, num_classes)``; features ``(N, num_features, H/32, W/32)``.
    """

    classifier_name = "classifier"

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0.0,
                 num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        for name, v in (("growth_rate", growth_rate), ("num_init_features", num_init_features),
                        ("bn_size", bn_size), ("in_channels", in_channels)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if not block_config or any(not isinstance(n, int) or n < 1 for n in block_config):
            raise ValueError(f"block_config must be positive layer counts, e.g. (6, 12, 24, 16); got {block_config!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]))
        c = num_init_features
        for i, n in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, c, growth_rate, bn_size, drop_rate))
            c += n * growth_rate
            if i < len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.num_features = c
        self.num_classes = num_classes
        self.classifier = nn.Linear(c, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, num_features, H/32, W/32)`` (after the last BN and ReLU)."""
        return F.relu(self.features(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling and the linear layer: ``(N, F, h, w)`` -> ``(N, K)``."""
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def densenet(*, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
             num_init_features: int = 64, num_classes: int = 1000, in_channels: int = 3,
             drop_rate: float = 0.0) -> DenseNet:
    """A DenseNet-BC of any size (Huang et al., 2017); the defaults are DenseNet-121."""
    return DenseNet(growth_rate, tuple(block_config), num_init_features, 4, drop_rate, num_classes, in_channels)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def densenet121(*, num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-121 (Huang et al., 2017, Table 1): k = 32, blocks (6, 12, 24, 16); 7,978,856
    parameters, as torchvision's ``densenet121``."""
    return DenseNet(32, (6, 12, 24, 16), 64, 4, drop_rate, num_classes, in_channels)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def densenet169(*, num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-169 (Huang et al., 2017, Table 1): k = 32, blocks (6, 12, 32, 32), as torchvision's
    ``densenet169``."""
    return DenseNet(32, (6, 12, 32, 32), 64, 4, drop_rate, num_classes, in_channels)
