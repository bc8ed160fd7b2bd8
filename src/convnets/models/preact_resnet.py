"""Pre-activation ResNet ("Identity Mappings in Deep Residual Networks", He et al., 2016b).

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

The original block computes ``y = relu(F(x) + x)``: the ReLU after the addition sits on the
shortcut path, so the signal that reaches a later block is not ``x`` itself. The pre-activation
block moves batch norm and ReLU *into* the residual branch, before each convolution, and leaves the
shortcut clean: ``y = x + F(x)`` with ``F = conv(relu(bn(conv(relu(bn(x))))))``. Then
``x_L = x_l + sum_{i=l}^{L-1} F(x_i)`` for any two blocks, and the gradient reaches every block
through an identity term. A network ends with one BN-ReLU before global average pooling.

Here the CIFAR variant (three stages of width ``w, 2w, 4w`` times the block's expansion), with a
basic block (depth ``6n + 2``) or a bottleneck (depth ``9n + 2``: ResNet-164 and ResNet-1001 of the
paper). Where the shape changes, the shortcut is a 1x1 convolution with stride on the
pre-activated input (the authors' code does the same).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["PreActBasicBlock", "PreActBottleneck", "PreActResNet", "preact_resnet_cifar"]


class PreActBasicBlock(nn.Module):
    """``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``; ``(N, in, H, W)`` -> ``(N, channels, H/s, W/s)``."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()
        out = channels * self.expansion
        self.shortcut = (nn.Conv2d(in_channels, out, 1, stride, bias=False)
                         if stride != 1 or in_channels != out else None)

    def residual(self, a: torch.Tensor) -> torch.Tensor:
        """The residual branch on the pre-activated input ``a = relu(bn1(x))``."""
        return self.conv2(self.relu(self.bn2(self.conv1(a))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        short = x if self.shortcut is None else self.shortcut(a)
        return short + self.residual(a)  # no activation after the addition


class PreActBottleneck(PreActBasicBlock):
    """``x + conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x)))))))))``, 1x1 - 3x3 - 1x1 with the
    last 1x1 expanding to ``4 * channels``; ``(N, in, H, W)`` -> ``(N, 4 channels, H/s, W/s)``."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        nn.Module.__init__(self)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.relu = nn.ReLU()
        out = channels * self.expansion
        self.shortcut = (nn.Conv2d(in_channels, out, 1, stride, bias=False)
                         if stride != 1 or in_channels != out else None)

    def residual(self, a: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.bn2(self.conv1(a))))
        return self.conv3(self.relu(self.bn3(out)))


class PreActResNet(ConvNet):
    """CIFAR-style pre-activation ResNet: 3x3 stem convolution (no BN after it: the first block
    pre-activates), three stages, a final BN-ReLU, global average pooling, one linear layer.

    ``(N, in_channels, H, W)`` -> ``(N, num_classes)``.
    """

    classifier_name = "fc"

    def __init__(self, depth: int = 164, block: Literal["basic", "bottleneck"] = "bottleneck",
                 in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck'; got {block!r}")
        per = 6 if block == "basic" else 9
        if not isinstance(depth, int) or depth < per + 2 or (depth - 2) % per:
            raise ValueError(f"a {block} pre-activation ResNet has depth {per}n + 2 (n >= 1); got {depth!r}")
        for name, v in (("in_channels", in_channels), ("width", width)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        cls = PreActBasicBlock if block == "basic" else PreActBottleneck
        n = (depth - 2) // per
        self.depth, self.block = depth, block
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        c = width
        stages = []
        for i, ch in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(n):
                blocks.append(cls(c, ch, 2 if (i > 0 and j == 0) else 1))
                c = ch * cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.num_features = c
        self.num_classes = num_classes
        self.fc = nn.Linear(c, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, num_features, ceil(H/4), ceil(W/4))`` after the final BN-ReLU."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.relu(self.bn(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(x.mean((2, 3), keepdim=True), 1)
        return x if pre_logits else self.fc(x)


@register_model(input_size=(1, 28, 28), min_input_size=(1, 8, 8))
def preact_resnet_cifar(*, depth: int = 164, block: Literal["basic", "bottleneck"] = "bottleneck",
                        in_channels: int = 1, num_classes: int = 10, width: int = 16) -> PreActResNet:
    """Pre-activation ResNet for small images (He et al., 2016b): ``depth = 9n + 2`` with
    bottlenecks (ResNet-164: 1,703,258 parameters on 3-channel input; ResNet-1001: 10,327,706), or
    ``6n + 2`` with basic blocks. ``in_channels`` defaults to 1 (MNIST), the book's data."""
    return PreActResNet(depth, block, in_channels, num_classes, width)
