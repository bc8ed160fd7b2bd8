"""Highway networks (Srivastava, Greff and Schmidhuber, 2015): a layer with a learned gate.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "What else".

A highway layer mixes a transformation ``H(x)`` and its input ``x`` with a *transform gate*
``T(x) = sigmoid(W_T x + b_T)``, per unit (here per channel and pixel):

    y = H(x) * T(x) + x * (1 - T(x)).

``1 - T`` is the *carry gate*. With ``T = 0`` the layer passes ``x`` through, with ``T = 1`` it is
a plain layer. The paper starts ``b_T`` negative (-2 for MNIST, down to -4 in deep CIFAR nets) so
that every layer begins close to the identity ("biased towards carry"). A residual block
``y = H(x) + x`` is the same sum with both gates fixed open at 1, with no parameter and no way to
close them.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["HighwayBlock"]


class HighwayBlock(nn.Module):
    """Convolutional highway layer: ``H = relu(conv_h(x))``, ``T = sigmoid(conv_t(x))`` (both k x k,
    same padding, with biases), ``y = H T + x (1 - T)``; ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    ``gate_bias`` initialises the bias of ``conv_t`` (the paper's ``b_T``).
    """

    def __init__(self, channels: int, kernel_size: int = 3, gate_bias: float = -2.0):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer; got {channels!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding); got {kernel_size!r}")
        self.conv_h = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv_t = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        nn.init.constant_(self.conv_t.bias, gate_bias)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The transform gate ``T(x)`` in (0, 1), shape of ``x``."""
        return torch.sigmoid(self.conv_t(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv_h(x))
        t = self.gate(x)
        return h * t + x * (1 - t)
