"""Network in Network (Lin, Chen, Yan 2013): "mlpconv" blocks and global average pooling.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``),
section "Network in Network". Two ideas that GoogLeNet and ResNet took over start here:

- the **mlpconv** block: a ``k x k`` convolution followed by 1x1 convolutions, i.e. a small
  multilayer perceptron applied to the channel vector at every pixel (a 1x1 convolution is a
  linear layer shared across positions);
- **global average pooling** instead of fully connected layers: the last 1x1 convolution outputs
  one map per class and each map is averaged into that class's score, so the head has no
  parameters beyond the last convolution's and takes any image size.

The paper's CIFAR-10 network has three mlpconv blocks; :func:`nin_mini` keeps that pattern at a
width that suits 28x28 digits. The class maps are not passed through a ReLU before the average
(implementations differ on this; the scores are then ordinary logits).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["NiN", "mlpconv", "nin_mini"]

#: (kernel, padding, widths of the k x k and following 1x1 convolutions, pool after the block)
Block = tuple[int, int, Sequence[int], str]

#: :func:`nin_mini`'s blocks for 28x28 inputs: 28 -> 14 -> 7, then the class maps (7x7).
NIN_MINI_BLOCKS: list[Block] = [(5, 2, (32, 32, 32), "max"), (5, 2, (64, 64, 64), "max"), (3, 1, (64, 64), "")]


def mlpconv(in_channels: int, widths: Sequence[int], kernel_size: int, padding: int) -> nn.Sequential:
    """One mlpconv block without its pool: a ``kernel_size`` convolution to ``widths[0]``
    channels, then a 1x1 convolution to each following width, each with a ReLU:
    ``(N, in_channels, H, W)`` -> ``(N, widths[-1], H', W')``."""
    if not widths:
        raise ValueError("an mlpconv block needs at least one width")
    layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], kernel_size, padding=padding), nn.ReLU(inplace=True)]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class NiN(ConvNet):
    """mlpconv blocks (each optionally followed by a 3x3 stride-2 max-pool and dropout), a final
    1x1 convolution to one map per class, and global average pooling:
    ``(N, C, H, W)`` -> ``(N, classes)``, for any ``H, W`` the pools allow.
    """

    classifier_name = "classifier"

    def __init__(self, blocks: Sequence[Block] = tuple(NIN_MINI_BLOCKS), in_channels: int = 1,
                 num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for kernel, padding, widths, pool in blocks:
            layers.append(mlpconv(c, widths, kernel, padding))
            if pool == "max":
                layers += [nn.MaxPool2d(3, stride=2, padding=1), nn.Dropout(dropout)]
            elif pool:
                raise ValueError(f"pool must be 'max' or '' (none); got {pool!r}")
            c = widths[-1]
        self.features = nn.Sequential(*layers)
        self.num_features = c
        self.num_classes = num_classes
        self.classifier = nn.Conv2d(c, num_classes, 1)  # one map per class

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> feature maps ``(N, num_features, h, w)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(N, num_features, h, w)`` -> class scores ``(N, classes)``: a 1x1 convolution to one
        map per class, then each map's average (``pre_logits``: the averaged features)."""
        if pre_logits:
            return x.mean((2, 3))
        return self.classifier(x).mean((2, 3))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh 1x1 convolution with ``num_classes`` maps (``0``: return the pooled features)."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        old = self.classifier
        if num_classes == 0:
            self.classifier = nn.Identity()
        else:
            self.classifier = nn.Conv2d(self.num_features, num_classes, 1)
            if isinstance(old, nn.Conv2d):
                self.classifier.to(device=old.weight.device, dtype=old.weight.dtype)
        self.num_classes = num_classes


@register_model(input_size=(1, 28, 28))
def nin_mini(*, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> NiN:
    """Network in Network ("Network in network", Lin et al. 2013) at digit scale: three mlpconv
    blocks (:data:`NIN_MINI_BLOCKS`), global average pooling, no fully connected layer."""
    return NiN(NIN_MINI_BLOCKS, in_channels, num_classes, dropout)
