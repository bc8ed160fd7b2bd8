"""VGG (Simonyan and Zisserman 2014): every column of the paper's Table 1, as data.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``),
section «VGG».

A configuration is a list read left to right (:data:`VGG_CONFIGS`):

- an ``int`` ``c``: a 3x3 convolution with ``c`` output channels, padding 1, then ReLU
  (Table 1's ``conv3-c``);
- a pair ``(c, k)``: a ``k``x``k`` convolution (column C's ``conv1-c`` is ``(c, 1)``);
- ``"M"``: 2x2 max-pooling with stride 2; ``"LRN"``: local response normalisation (column A-LRN).

The module names are torchvision's (``features.<i>``, ``classifier.<i>``), so
``torchvision.models.vgg11/13/16/19`` (columns A, B, D, E) and their ``_bn`` versions load into
ours with ``strict=True``. Parameter counts (1000 classes) equal the paper's Table 2, exactly:
A 132,863,336 (A-LRN the same), B 133,047,848, C 133,638,952, D 138,357,544, E 143,667,240.

Input size: any image of at least 32x32 (five halvings leave at least 1x1; an adaptive average
pool then brings the map to 7x7, which keeps the classifier's shape and its weights).
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["VGG", "VGG_CONFIGS", "VGG_MINI_CONFIG", "TORCHVISION_NAMES", "make_layers", "describe_layer", "vgg", "vgg11", "vgg11_bn", "vgg13",
           "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vgg_mini"]

Layer = Union[int, tuple[int, int], str]

#: Table 1 of the paper, column by column ("M": max-pool; ``(c, 1)``: a 1x1 convolution).
VGG_CONFIGS: dict[str, list[Layer]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}

#: torchvision's names for the columns it ships.
TORCHVISION_NAMES = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}


def describe_layer(v: Layer) -> str:
    """Table 1's notation for one entry: ``64`` -> ``"conv3-64"``, ``(256, 1)`` -> ``"conv1-256"``."""
    if v == "M":
        return "maxpool"
    if v == "LRN":
        return "LRN"
    if isinstance(v, int):
        return f"conv3-{v}"
    if isinstance(v, tuple) and len(v) == 2:
        return f"conv{v[1]}-{v[0]}"
    raise ValueError(f"unknown VGG layer {v!r}: use an int (3x3 conv), (channels, kernel), 'M' or 'LRN'")


def make_layers(cfg: Sequence[Layer], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The convolutional part of a VGG from a configuration list: ``(N, in_channels, H, W)`` ->
    ``(N, last channels, H / 2**pools, W / 2**pools)``.

    Each convolution is followed by ``BatchNorm2d`` (when ``batch_norm``) and ``ReLU``.
    """
    layers: list[nn.Module] = []
    c_in = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif v == "LRN":
            # Krizhevsky's LRN (k=2, n=5, alpha=1e-4, beta=0.75); torch divides alpha by n
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        else:
            describe_layer(v)  # validates
            c_out, k = (v, 3) if isinstance(v, int) else v
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            c_in = c_out
    return nn.Sequential(*layers)


def _out_channels(cfg: Sequence[Layer], in_channels: int) -> int:
    c = in_channels
    for v in cfg:
        if isinstance(v, int):
            c = v
        elif isinstance(v, tuple):
            c = v[0]
    return c


class VGG(ConvNet):
    """A VGG: ``make_layers(cfg)``, an adaptive average pool to ``pool_size`` x ``pool_size``,
    and three fully connected layers (``hidden``, ``hidden``, classes) with dropout.

    ``(N, C, H, W)`` -> ``(N, classes)``. The defaults are the paper's (and torchvision's).
    """

    classifier_name = "classifier.6"

    def __init__(self, cfg: Sequence[Layer], batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
                 dropout: float = 0.5, hidden: int = 4096, pool_size: int = 7, init_weights: bool = True):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.cfg = list(cfg)
        self.features = make_layers(cfg, batch_norm, in_channels)
        c = _out_channels(cfg, in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(c * pool_size * pool_size, hidden), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = hidden
        self.num_classes = num_classes
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation for the convolutions (the paper pre-trained A and copied its layers
        # into the deeper nets; He et al. 2015 showed this initialisation makes that unnecessary)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)  # the paper's N(0, 0.01^2)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 512, H/32, W/32)`` for the paper's columns."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool to ``pool_size``, flatten, two hidden layers; ``pre_logits``: ``(N, hidden)``."""
        x = torch.flatten(self.avgpool(x), 1)
        if not pre_logits:
            return self.classifier(x)  # called whole, so hooks and FLOP counters see "classifier"
        for layer in list(self.classifier)[:-1]:
            x = layer(x)
        return x


def _config(config: str | Sequence[Layer]) -> list[Layer]:
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG configuration {config!r}; Table 1 has {', '.join(VGG_CONFIGS)} "
                             "(or pass a list such as [64, 'M', 128, 'M'])")
        return list(VGG_CONFIGS[config])
    return list(config)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg(*, config: str | Sequence[Layer] = "D", batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
        dropout: float = 0.5, init_weights: bool = True) -> VGG:
    """A column of Table 1 of "Very deep convolutional networks for large-scale image
    recognition" (Simonyan and Zisserman 2014): ``config`` in 'A', 'A-LRN', 'B', 'C', 'D', 'E',
    or a list of layers; ``batch_norm`` adds BN after each convolution (not in the paper)."""
    return VGG(_config(config), batch_norm, num_classes, in_channels, dropout, init_weights=init_weights)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg11(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column A (11 weight layers), 132,863,336 parameters."""
    return vgg(config="A", batch_norm=False, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg11_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column A with batch norm (torchvision's ``vgg11_bn``)."""
    return vgg(config="A", batch_norm=True, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg13(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column B (13 weight layers), 133,047,848 parameters."""
    return vgg(config="B", batch_norm=False, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg13_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column B with batch norm (torchvision's ``vgg13_bn``)."""
    return vgg(config="B", batch_norm=True, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg16(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column D (16 weight layers), 138,357,544 parameters."""
    return vgg(config="D", batch_norm=False, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg16_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column D with batch norm (torchvision's ``vgg16_bn``)."""
    return vgg(config="D", batch_norm=True, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg19(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column E (19 weight layers), 143,667,240 parameters."""
    return vgg(config="E", batch_norm=False, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def vgg19_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG column E with batch norm (torchvision's ``vgg19_bn``)."""
    return vgg(config="E", batch_norm=True, num_classes=num_classes, in_channels=in_channels, **kwargs)


#: Column A's first four stages at a quarter of the width, for 28x28 digits (28 -> 14 -> 7 -> 3).
VGG_MINI_CONFIG: list[Layer] = [16, "M", 32, "M", 64, 64, "M", 128, 128]


@register_model(input_size=(1, 28, 28))
def vgg_mini(*, num_classes: int = 10, in_channels: int = 1, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG narrowed for 28x28 digits: only 3x3 convolutions and 2x2 pools, column A's first
    four stages at a quarter width (:data:`VGG_MINI_CONFIG`), a 3x3 pooled map and 256 hidden
    units."""
    return VGG(VGG_MINI_CONFIG, batch_norm, num_classes, in_channels, dropout, hidden=256, pool_size=3)
