"""A small CNN for the first chapter: two conv blocks and a two-layer head.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``).
"""
from __future__ import annotations

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["SimpleCNN", "simple_cnn"]


class SimpleCNN(ConvNet):
    """Two convolution blocks and a two-layer head, for ``(N, C, 28, 28)`` images by default:

    conv 3x3 (w) - ReLU - maxpool 2 - conv 3x3 (2w) - ReLU - maxpool 2 - flatten -
    linear (hidden) - ReLU - linear (classes).

    ``image_size`` must be divisible by 4 (two poolings).
    """

    classifier_name = "fc"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32,
                 hidden: int = 128, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2x2 poolings); got {image_size}")
        w = width
        self.fixed_image_size = (image_size, image_size)  # the head's width depends on it
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.hidden = nn.Sequential(nn.Linear(2 * w * (image_size // 4) ** 2, hidden), nn.ReLU(inplace=True))
        self.num_features = hidden
        self.num_classes = num_classes
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 2w, H/4, W/4)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.hidden(torch.flatten(x, 1))
        return x if pre_logits else self.fc(x)


@register_model(input_size=(1, 28, 28))
def simple_cnn(*, num_classes: int = 10, in_channels: int = 1, width: int = 32, hidden: int = 128,
               image_size: int = 28) -> SimpleCNN:
    """The first chapter's small CNN (421,642 parameters with the defaults)."""
    return SimpleCNN(in_channels, num_classes, width, hidden, image_size)
