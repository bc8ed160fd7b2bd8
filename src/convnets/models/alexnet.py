"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), weight-compatible with torchvision's.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``),
section «AlexNet».

The paper split the network over two GPUs (grouped convolutions in layers 2, 4, 5: 60,965,224
parameters) with 48-128-192-192-128 kernels per GPU. torchvision's single-GPU variant, from
Krizhevsky's "one weird trick" paper, has 64-192-384-256-256 kernels and 61,100,840 parameters;
we build that one with the same module names, so ``torchvision.models.alexnet``'s state dict
(and its pretrained weights, when the reader has them) loads with ``strict=True``.

``lrn=True`` adds the paper's local response normalisation after the first two ReLUs
(``k=2, n=5, alpha=1e-4, beta=0.75``; torch divides ``alpha`` by ``n``, so we pass ``5e-4``).
It has no parameters and sits inside the ReLU's slot, so the state dict keys do not change.

Input size: at least 63x63 with the default stem (an adaptive average pool brings any larger
map to 6x6 before the classifier). Smaller images need a smaller stem: see :func:`alexnet_mini`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["AlexNet", "alexnet", "alexnet_mini"]


def _relu(lrn: bool) -> nn.Module:
    if not lrn:
        return nn.ReLU(inplace=True)
    # size 5, k 2, beta 0.75 as in Sec. 3.3; torch's alpha is the paper's alpha times size
    return nn.Sequential(nn.ReLU(inplace=True), nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))


class AlexNet(ConvNet):
    """Five convolutions (three max-pools), an adaptive average pool to ``pool_size``, and three
    fully connected layers with dropout: ``(N, C, H, W)`` -> ``(N, classes)``.

    ``widths``: the five convolutions' channels; ``hidden``: the two hidden layers' width;
    ``stem``: (kernel, stride, padding) of the first convolution. The defaults are torchvision's
    AlexNet.
    """

    classifier_name = "classifier.6"

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5, lrn: bool = False,
                 widths: Sequence[int] = (64, 192, 384, 256, 256), hidden: int = 4096,
                 stem: tuple[int, int, int] = (11, 4, 2), pool_size: int = 6):
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"AlexNet has five convolutions: widths needs 5 numbers; got {tuple(widths)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        w1, w2, w3, w4, w5 = widths
        k, s, p = stem
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, kernel_size=k, stride=s, padding=p), _relu(lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),  # overlapping pooling (z = 3, s = 2)
            nn.Conv2d(w1, w2, kernel_size=5, padding=2), _relu(lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(w2, w3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w3, w4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w4, w5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(w5 * pool_size * pool_size, hidden), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = hidden
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, widths[4], H', W')`` (6x6 at 224x224 with the default stem)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool to ``pool_size``, flatten, two hidden layers; ``pre_logits``: ``(N, hidden)``."""
        x = torch.flatten(self.avgpool(x), 1)
        if not pre_logits:
            return self.classifier(x)  # called whole, so hooks and FLOP counters see "classifier"
        for layer in list(self.classifier)[:-1]:
            x = layer(x)
        return x


@register_model(input_size=(3, 224, 224), min_input_size=(3, 64, 64))
def alexnet(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5, lrn: bool = False) -> AlexNet:
    """AlexNet, "ImageNet classification with deep convolutional neural networks" (Krizhevsky
    et al. 2012), single-GPU variant as in torchvision: 61,100,840 parameters (1000 classes)."""
    return AlexNet(in_channels, num_classes, dropout, lrn)


@register_model(input_size=(1, 28, 28))
def alexnet_mini(*, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5, lrn: bool = False) -> AlexNet:
    """AlexNet narrowed for 28x28 digits: the same layer pattern (five convolutions, three
    overlapping max-pools, two dropout-regularised hidden layers) with a 5x5 stride-1 stem,
    widths 24-64-96-64-64 and 256 hidden units. Feature maps 28 -> 13 -> 6 -> 2."""
    return AlexNet(in_channels, num_classes, dropout, lrn, widths=(24, 64, 96, 64, 64), hidden=256,
                   stem=(5, 1, 2), pool_size=2)
