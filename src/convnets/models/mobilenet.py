"""MobileNetV2 (Sandler et al., 2018) and its inverted residual block.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

A ResNet bottleneck is wide - narrow - wide (1x1 reduce, 3x3, 1x1 expand) with the shortcut
between the wide ends. MobileNetV2 inverts it: narrow - wide - narrow. A 1x1 convolution
*expands* ``C`` channels by a factor ``t`` (6), a depthwise 3x3 convolution filters them, and a
*linear* 1x1 projection (no activation: a ReLU on a narrow layer destroys information) brings
them back to a narrow width, with the shortcut between the narrow ends.

Module names follow torchvision's ``models/mobilenetv2.py``, so its ``state_dict`` loads with
``strict=True`` (3,504,872 parameters with 1000 classes).
"""
from __future__ import annotations

import torch
from torch import nn

from ._base import ConvNet, register_model
from .layers import ConvNormAct, make_divisible

__all__ = ["make_divisible", "InvertedResidual", "MobileNetV2", "mobilenet_v2"]


class InvertedResidual(nn.Module):
    """Expand 1x1 (x ``expand_ratio``, ReLU6) - depthwise 3x3 (ReLU6) - linear projection 1x1,
    plus the identity when ``stride == 1`` and ``in_channels == out_channels``.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H/stride, W/stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2; got {stride}")
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            ConvNormAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


#: (expansion t, output channels c, repeats n, first stride s), the paper's Table 2
MOBILENET_V2_CFG: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


class MobileNetV2(ConvNet):
    """MobileNetV2: ``(N, in_channels, H, W)`` -> ``(N, num_classes)``; feature map
    ``(N, 1280, H/32, W/32)``; ``width_mult`` scales every width (rounded to multiples of 8)."""

    classifier_name = "classifier.1"

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive; got {width_mult}")
        c_in = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvNormAct(in_channels, c_in, 3, 2, activation=nn.ReLU6)]
        for t, c, n, s in MOBILENET_V2_CFG:
            c_out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(c_in, c_out, s if i == 0 else 1, t))
                c_in = c_out
        features.append(ConvNormAct(c_in, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.num_features = last
        self.num_classes = num_classes
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 1280, H/32, W/32)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def mobilenet_v2(*, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 (Sandler et al., 2018): 3,504,872 parameters with 1000 classes (torchvision)."""
    return MobileNetV2(num_classes, in_channels, width_mult, dropout)
