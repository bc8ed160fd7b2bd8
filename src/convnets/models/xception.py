"""Xception (Chollet, 2017) and the depthwise separable convolution.

Explained in the chapter "ResNet, global average pooling and what came after"
(``book/06-resnet-and-beyond.md``), section "Xception".

A standard ``k x k`` convolution from ``C_in`` to ``C_out`` channels mixes space and channels at
once: ``k^2 C_in C_out`` weights. A *depthwise separable* convolution splits the two: a depthwise
``k x k`` convolution filters each channel on its own (``k^2 C_in`` weights, ``groups=C_in``),
then a pointwise 1x1 convolution mixes channels (``C_in C_out`` weights). The ratio of the two
costs is ``1/C_out + 1/k^2``. Xception ("extreme Inception") builds a whole network of them,
in 36 convolutional layers grouped in 14 modules with residual connections:

- entry flow: two 3x3 convolutions, then three modules that halve the resolution
  (128, 256, 728 channels);
- middle flow: eight modules of three separable convolutions at 728 channels;
- exit flow: one module to 1024 channels, two separable convolutions to 1536 and 2048, global
  average pooling and a linear layer.

With 1000 classes the network has 22,855,952 parameters (paper, Table 3; timm's
``legacy_xception`` counts the same).
"""
from __future__ import annotations

import torch
from torch import nn

from ._base import ConvNet, register_model

__all__ = ["SeparableConv2d", "XceptionBlock", "Xception", "xception"]


class SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` convolution (one filter per input channel) then pointwise 1x1.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H', W')`` with ``H'`` as for a
    ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)``. Parameters:
    ``k^2 in_channels + in_channels out_channels`` (plus ``out_channels`` with ``bias=True``),
    against ``k^2 in_channels out_channels`` for the standard convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, dilation: int = 1, bias: bool = False):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if padding is None:  # "same" for odd kernels at stride 1
            padding = dilation * (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """One Xception module: ``reps`` x (ReLU, separable 3x3, BN), a 3x3/2 max pooling when
    ``stride=2``, plus a shortcut (identity, or 1x1 convolution with stride and BN when the shape
    changes).

    ``grow_first``: the first separable convolution changes the width (entry, middle flow);
    otherwise the last one does (exit flow). ``start_with_relu=False`` drops the first ReLU
    (the first module follows a ReLU already).
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True):
        super().__init__()
        if reps < 1:
            raise ValueError(f"reps must be at least 1; got {reps}")
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
        else:
            self.skip = nn.Identity()
        widths = ([in_channels] + [out_channels] * reps if grow_first
                  else [in_channels] * reps + [out_channels])
        layers: list[nn.Module] = []
        for i in range(reps):
            # inplace=False on the first ReLU: its input is also the shortcut's input
            layers += [nn.ReLU(inplace=i > 0), SeparableConv2d(widths[i], widths[i + 1], 3),
                       nn.BatchNorm2d(widths[i + 1])]
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.skip(x)


class Xception(ConvNet):
    """Xception: ``(N, in_channels, H, W)`` -> ``(N, num_classes)``; designed for 299x299
    (feature map 10x10 there), any ``H, W >= 32`` works thanks to global average pooling."""

    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, middle_blocks: int = 8):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.entry_flow = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, 2, 0, bias=False), nn.BatchNorm2d(32), relu(),
            nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64), relu(),
            XceptionBlock(64, 128, 2, 2, start_with_relu=False),
            XceptionBlock(128, 256, 2, 2),
            XceptionBlock(256, 728, 2, 2),
        )
        self.middle_flow = nn.Sequential(*[XceptionBlock(728, 728, 3, 1) for _ in range(middle_blocks)])
        self.exit_flow = nn.Sequential(
            XceptionBlock(728, 1024, 2, 2, grow_first=False),
            SeparableConv2d(1024, 1536, 3), nn.BatchNorm2d(1536), relu(),
            SeparableConv2d(1536, 2048, 3), nn.BatchNorm2d(2048), relu(),
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 2048
        self.num_classes = num_classes
        self.fc = nn.Linear(2048, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 2048, ~H/32, ~W/32)`` (10x10 at 299x299)."""
        return self.exit_flow(self.middle_flow(self.entry_flow(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.global_pool(x), 1)
        return x if pre_logits else self.fc(x)


@register_model(input_size=(3, 299, 299), min_input_size=(3, 71, 71))
def xception(*, num_classes: int = 1000, in_channels: int = 3, middle_blocks: int = 8) -> Xception:
    """Xception (Chollet, 2017, Fig. 5): 22,855,952 parameters with 1000 classes (Table 3)."""
    return Xception(num_classes, in_channels, middle_blocks)
