"""ResNet-18/34/50/101/152 (He et al., 2016), weight-compatible with torchvision.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``).

The module names follow torchvision's ``models/resnet.py`` (``conv1``, ``bn1``, ``layer1`` ...
``layer4``, ``fc``; blocks with ``conv1``/``bn1``/``conv2``/``bn2`` [``conv3``/``bn3``] and a
``downsample`` branch only where the shape changes), so ``torchvision.models.resnet50()``'s
``state_dict`` loads into :func:`resnet50` with ``strict=True``.

A residual block computes ``y = relu(F(x) + shortcut(x))``: the stacked layers learn the
residual ``F(x) = H(x) - x`` instead of the whole mapping ``H(x)``. The shortcut is the identity
when shape is kept and a 1x1 convolution with stride (a *projection*, the paper's option B)
when the block changes the number of channels or the resolution.
"""
from __future__ import annotations

from typing import Sequence, Type, Union

import torch
from torch import nn

from ._base import ConvNet, register_model
from .layers import conv1x1, conv3x3  # noqa: F401  (re-exported: notebooks import them from here)

__all__ = [
    "conv3x3",
    "conv1x1",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def _check_positive(**kwargs: int) -> None:
    for name, value in kwargs.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``(N, in_channels, H, W)`` -> ``(N, channels, H/stride, W/stride)``. ``downsample`` is the
    shortcut when the shape changes (``None``: identity).
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, stride_in_1x1: bool = False):
        super().__init__()
        _check_positive(in_channels=in_channels, channels=channels, stride=stride)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.stride = stride

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch ``F(x)`` alone (before the addition)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.residual(x)
        out += identity  # in place, as torchvision: no new activation-sized tensor per block
        return self.relu(out)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm that ends the residual branch (zero its weight to make the block an identity)."""
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 (reduce to ``channels``) - 3x3 - 1x1 (expand to ``4 * channels``), and a shortcut.

    ``(N, in_channels, H, W)`` -> ``(N, 4 * channels, H/stride, W/stride)``. The stride sits on
    the 3x3 convolution as in torchvision ("ResNet v1.5"); ``stride_in_1x1=True`` puts it on the
    first 1x1 as in the paper (same parameters, fewer multiply-adds, slightly less accurate).
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, stride_in_1x1: bool = False):
        super().__init__()
        _check_positive(in_channels=in_channels, channels=channels, stride=stride)
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, channels, s1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, s3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch ``F(x)`` alone (before the addition)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.residual(x)
        out += identity  # in place, as torchvision: no new activation-sized tensor per block
        return self.relu(out)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


Block = Type[Union[BasicBlock, Bottleneck]]


def init_resnet_(model: nn.Module, zero_init_residual: bool = False) -> None:
    """He initialisation as in torchvision: kaiming_normal (fan_out, relu) for convolutions, BN
    weight 1 and bias 0; ``zero_init_residual`` zeroes the last BN of each residual branch so each
    block starts as the identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn.weight)


class ResNet(ConvNet):
    """The ImageNet ResNet: 7x7/2 conv stem, 3x3/2 max pooling, four stages of residual blocks
    (64, 128, 256, 512 channels times the block's expansion; stages 2-4 halve the resolution),
    global average pooling and one linear layer.

    ``(N, in_channels, H, W)`` -> logits ``(N, num_classes)``; any ``H, W >= 32`` works thanks to
    global average pooling (the feature map is ``H/32 x W/32``, rounded up).
    """

    classifier_name = "fc"

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000,
                 in_channels: int = 3, width: int = 64, zero_init_residual: bool = False,
                 stride_in_1x1: bool = False):
        super().__init__()
        if not (isinstance(block, type) and issubclass(block, (BasicBlock, Bottleneck))):
            raise TypeError(f"block must be BasicBlock or Bottleneck; got {block!r}")
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, e.g. [2, 2, 2, 2]; got {layers!r}")
        _check_positive(in_channels=in_channels, width=width)
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        self.stride_in_1x1 = stride_in_1x1
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 8 * width * block.expansion
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        init_resnet_(self, zero_init_residual)

    def _make_layer(self, block: Block, channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != channels * block.expansion:
            # projection shortcut (option B): 1x1 conv with the block's stride, then BN
            downsample = nn.Sequential(conv1x1(self.inplanes, channels * block.expansion, stride),
                                       nn.BatchNorm2d(channels * block.expansion))
        layers = [block(self.inplanes, channels, stride, downsample, self.stride_in_1x1)]
        self.inplanes = channels * block.expansion
        layers += [block(self.inplanes, channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, num_features, ceil(H/32), ceil(W/32))``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling, then the linear classifier: ``(N, F, h, w)`` -> ``(N, K)``."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18 (He et al., 2016, Table 1): basic blocks [2, 2, 2, 2]; 11,689,512 parameters."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34 (He et al., 2016, Table 1): basic blocks [3, 4, 6, 3]; 21,797,672 parameters."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-50 (He et al., 2016, Table 1): bottleneck blocks [3, 4, 6, 3]; 25,557,032 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def resnet101(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-101 (He et al., 2016, Table 1): bottleneck blocks [3, 4, 23, 3]; 44,549,160 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, **kwargs)


@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))
def resnet152(*, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-152 (He et al., 2016, Table 1): bottleneck blocks [3, 8, 36, 3]; 60,192,808 parameters."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, **kwargs)
