"""EfficientNet (Tan & Le, 2019): MBConv blocks with SE, and compound scaling.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

EfficientNet-B0 was found by architecture search: a stack of MBConv blocks (MobileNetV2's
inverted residual with a squeeze-and-excitation block and the SiLU activation). Bigger models
scale it by one coefficient ``phi``: depth by ``alpha^phi``, width by ``beta^phi``, resolution
by ``gamma^phi``, with ``alpha = 1.2, beta = 1.1, gamma = 1.15`` chosen so that
``alpha beta^2 gamma^2 ~ 2`` (FLOPs roughly double per unit of ``phi``).

Module names follow torchvision's ``models/efficientnet.py``, so ``efficientnet_b0``'s
``state_dict`` loads with ``strict=True`` (5,288,548 parameters with 1000 classes).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._base import ConvNet, register_model
from torchvision.ops import StochasticDepth

from .layers import ConvNormAct, drop_path, make_divisible  # noqa: F401  (drop_path: re-exported)
from .se import SqueezeExcitation

__all__ = ["drop_path", "MBConv", "EfficientNet", "efficientnet", "efficientnet_b0", "B0_CFG"]


class MBConv(nn.Module):
    """Expand 1x1 (SiLU) - depthwise k x k (SiLU) - SE - linear projection 1x1, with an identity
    shortcut (and stochastic depth) when ``stride == 1`` and the width is kept.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H/stride, W/stride)``; the SE block squeezes
    to ``in_channels / 4`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand_ratio: int, drop_path_prob: float = 0.0):
        super().__init__()
        hidden = make_divisible(in_channels * expand_ratio)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvNormAct(in_channels, hidden, 1, activation=nn.SiLU))
        layers += [
            ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, activation=nn.SiLU),
            SqueezeExcitation(hidden, max(1, in_channels // 4), activation=nn.SiLU),
            ConvNormAct(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.drop_path_prob = drop_path_prob
        # torchvision's module: a leaf for torch.fx (its stochastic_depth is fx-wrapped)
        self.stochastic_depth = StochasticDepth(drop_path_prob, "row")
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


#: EfficientNet-B0 (Tan & Le, 2019, Table 1): (expansion, kernel, first stride, channels, repeats)
B0_CFG: list[tuple[int, int, int, int, int]] = [
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
]


class EfficientNet(ConvNet):
    """EfficientNet with width multiplier ``width_mult`` and depth multiplier ``depth_mult``
    (B0: both 1). ``(N, in_channels, H, W)`` -> ``(N, num_classes)``; feature map
    ``(N, 4 * 320 * width_mult, H/32, W/32)``."""

    classifier_name = "classifier.1"

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 depth_mult: float = 1.0, dropout: float = 0.2, drop_path_rate: float = 0.2):
        super().__init__()
        if width_mult <= 0 or depth_mult <= 0:
            raise ValueError(f"width_mult and depth_mult must be positive; got {width_mult}, {depth_mult}")
        w = lambda c: make_divisible(c * width_mult)  # noqa: E731
        stages = [(t, k, s, w(c), int(math.ceil(n * depth_mult))) for t, k, s, c, n in B0_CFG]
        total = sum(n for *_, n in stages)
        c_in = w(32)
        features: list[nn.Module] = [ConvNormAct(in_channels, c_in, 3, 2, activation=nn.SiLU)]
        idx = 0
        for t, k, s, c, n in stages:
            stage = []
            for i in range(n):
                stage.append(MBConv(c_in, c, k, s if i == 0 else 1, t, drop_path_rate * idx / total))
                c_in = c
                idx += 1
            features.append(nn.Sequential(*stage))
        last = 4 * c_in
        features.append(ConvNormAct(c_in, last, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = last
        self.num_classes = num_classes
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, num_features, H/32, W/32)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.classifier(x)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def efficientnet(*, phi: float = 0.0, num_classes: int = 1000, in_channels: int = 3, alpha: float = 1.2,
                 beta: float = 1.1, **kwargs) -> EfficientNet:
    """Compound scaling of B0 (Tan & Le, 2019, Eq. 3): depth x ``alpha**phi``, width x ``beta**phi``
    (the resolution ``gamma**phi`` is the input's business)."""
    return EfficientNet(num_classes, in_channels, width_mult=beta ** phi, depth_mult=alpha ** phi, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def efficientnet_b0(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (Tan & Le, 2019, Table 1): 5,288,548 parameters with 1000 classes."""
    return EfficientNet(num_classes, in_channels, **kwargs)
