"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), in the form most PyTorch code uses.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``),
section «LeNet».

The paper's network (Sec. II.B) has trainable subsampling layers (S2, S4: a coefficient and a
bias per map), a C3 layer connected to a hand-picked subset of S2's maps, a scaled tanh and
an RBF output layer: 60,000 trainable parameters in the paper's words. The variant here, like
most re-implementations, keeps the layer sizes and drops those details:

    conv 5x5 (6) - act - pool 2 - conv 5x5 (16) - act - pool 2 - flatten (400) -
    linear 120 - act - linear 84 - act - linear (classes)

61,706 parameters for 1x32x32 inputs and 10 classes (REFERENCE.md). MNIST's 28x28 digits are
padded by 2 inside the first convolution, which is exactly the paper's "32x32 input with the
digit centred in a 28x28 field": the parameter count does not change.
"""
from __future__ import annotations

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["LeNet5", "lenet5"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(ConvNet):
    """LeNet-5 for ``(N, C, S, S)`` images, ``S`` in {28, 30, 32}: the first convolution pads
    by ``(32 - S) / 2`` so the feature maps have the paper's sizes (28, 14, 10, 5).

    ``activation``: ``"tanh"`` (the paper's choice) or ``"relu"``; ``pooling``: ``"avg"`` (the
    paper's subsampling, here without its trainable scale) or ``"max"``.
    """

    classifier_name = "fc"

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 32,
                 activation: str = "tanh", pooling: str = "avg"):
        super().__init__()
        pad2 = 32 - image_size
        if pad2 < 0 or pad2 > 4 or pad2 % 2:
            raise ValueError(
                f"LeNet5 takes 28x28, 30x30 or 32x32 images (padded to the paper's 32x32); got "
                f"image_size={image_size}: resize the images first"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
        if pooling not in _POOLS:
            raise ValueError(f"pooling must be one of {sorted(_POOLS)}; got {pooling!r}")
        act, pool = _ACTIVATIONS[activation], _POOLS[pooling]
        self.image_size = image_size
        self.fixed_image_size = (image_size, image_size)  # checked by ConvNet.forward
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad2 // 2), act(), pool(2),   # C1, S2: 6x28x28 -> 6x14x14
            nn.Conv2d(6, 16, 5), act(), pool(2),                             # C3, S4: 16x10x10 -> 16x5x5
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), act(),                 # C5 (a full 5x5 convolution)
            nn.Linear(120, 84), act(),                                       # F6
        )
        self.num_features = 84
        self.num_classes = num_classes
        self.fc = nn.Linear(84, num_classes)                                 # output layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` -> ``(N, 16, 5, 5)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(N, 16, 5, 5)`` -> logits ``(N, classes)`` (``pre_logits``: F6's ``(N, 84)``)."""
        x = self.head(x)
        return x if pre_logits else self.fc(x)


@register_model(input_size=(1, 32, 32))
def lenet5(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 32, activation: str = "tanh",
           pooling: str = "avg") -> LeNet5:
    """LeNet-5, "Gradient-based learning applied to document recognition" (LeCun et al. 1998):
    the common PyTorch variant, 61,706 parameters with 1 input channel and 10 classes."""
    return LeNet5(in_channels, num_classes, image_size, activation, pooling)
