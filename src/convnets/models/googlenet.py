"""GoogLeNet (Szegedy et al. 2014, "Going deeper with convolutions"), as the paper designed it.

Explained in the chapter "Classic architectures" (``book/05-classic-architectures.md``),
section «GoogLeNet».

The network of the paper's Table 1 and Figure 3: a stem (7x7/2 convolution, max-pool, LRN,
1x1 and 3x3 convolutions, LRN, max-pool), nine Inception modules (3a-3b, 4a-4e, 5a-5b) with
max-pools between the groups, global average pooling, 40 % dropout and one linear layer.
Two auxiliary classifiers (on 4a and 4d: 5x5/3 average pool, 1x1 convolution with 128 filters,
a 1024-unit layer, 70 % dropout, linear) add their losses with weight 0.3 during training and
are dropped at test time. Every convolution has a bias and a ReLU; there is no batch norm.

Counts (1000 classes): 6,998,552 parameters without the auxiliary heads, 13,378,280 with them
(REFERENCE.md); about 1.5 G multiply-adds at 224x224.

torchvision's ``googlenet`` differs from the paper, so its weights do not load here:

- the "5x5" branch uses a 3x3 convolution (a bug kept for the sake of its pretrained weights);
- every convolution is followed by batch norm (eps 0.001) and has no bias; there is no LRN;
- the pool between stages 4 and 5 is 2x2 instead of 3x3, the final dropout 0.2 instead of 0.4,
  and the auxiliary heads pool adaptively to 4x4.

``googlenet(batch_norm=True, branch3_kernel=3, lrn=False, aux_logits=False)`` has exactly
torchvision's 6,624,904 parameters, which the tests check.
"""
from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ._base import ConvNet, check_images, register_model
from .layers import ConvNormAct

torch.fx.wrap("check_images")  # GoogLeNet's own forward calls the input check: a leaf for torch.fx too

__all__ = ["Inception", "InceptionAux", "GoogLeNet", "GOOGLENET_MODULES", "googlenet", "googlenet_mini"]

#: Table 1: (input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) per module.
GOOGLENET_MODULES: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class Inception(nn.Module):
    """The Inception module: four parallel branches concatenated along channels.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)`` with
    ``out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj`` (``+ in_channels`` instead of
    ``pool_proj`` when ``reduce=False``).

    - ``branch1``: 1x1 convolution;
    - ``branch2``: 1x1 reduction to ``ch3x3red``, then 3x3;
    - ``branch3``: 1x1 reduction to ``ch5x5red``, then 5x5 (``kernel5`` = 3 gives torchvision's);
    - ``branch4``: 3x3 max-pool with stride 1, then a 1x1 projection to ``pool_proj``.

    ``reduce=False`` is the paper's "naive" module (Figure 2a): no 1x1 reductions before the
    3x3 and 5x5 convolutions and no projection after the pool.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, reduce: bool = True, batch_norm: bool = False, kernel5: int = 5):
        super().__init__()
        bn = batch_norm
        self.branch1 = ConvNormAct(in_channels, ch1x1, 1, batch_norm=bn, named=True)
        pool = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True)
        if reduce:
            self.branch2 = nn.Sequential(ConvNormAct(in_channels, ch3x3red, 1, batch_norm=bn, named=True),
                                         ConvNormAct(ch3x3red, ch3x3, 3, batch_norm=bn, named=True))
            self.branch3 = nn.Sequential(ConvNormAct(in_channels, ch5x5red, 1, batch_norm=bn, named=True),
                                         ConvNormAct(ch5x5red, ch5x5, kernel5, batch_norm=bn, named=True))
            self.branch4 = nn.Sequential(pool, ConvNormAct(in_channels, pool_proj, 1, batch_norm=bn, named=True))
            self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        else:
            self.branch2 = ConvNormAct(in_channels, ch3x3, 3, batch_norm=bn, named=True)
            self.branch3 = ConvNormAct(in_channels, ch5x5, kernel5, batch_norm=bn, named=True)
            self.branch4 = pool
            self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


@torch.fx.wrap
def _aux_pool(x: torch.Tensor) -> torch.Tensor:
    """The auxiliary heads' pooling to ``4 x 4``: 5x5 average pool with stride 3 on maps of side
    14 or more (the paper's), then adaptive average pooling (exact on 14x14). Its branch on the
    input size makes it a leaf for :mod:`torch.fx`."""
    if min(x.shape[-2:]) >= 14:
        x = F.avg_pool2d(x, 5, stride=3)
    return F.adaptive_avg_pool2d(x, 4)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``(N, in_channels, H, W)`` -> ``(N, classes)``.

    5x5 average pool with stride 3 (14x14 -> 4x4 at 224x224; smaller maps are pooled adaptively
    to 4x4 instead), 1x1 convolution with 128 filters and ReLU, a 1024-unit layer with ReLU,
    70 % dropout, linear.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7, batch_norm: bool = False,
                 width: int = 128, hidden: int = 1024):
        super().__init__()
        self.conv = ConvNormAct(in_channels, width, 1, batch_norm=batch_norm, named=True)
        self.fc1 = nn.Linear(width * 4 * 4, hidden)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(_aux_pool(x)), 1)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))
        return self.fc2(x)


class GoogLeNet(ConvNet):
    """GoogLeNet: ``(N, C, H, W)`` -> ``(N, classes)`` in eval mode; in training mode with
    ``aux_logits`` a tuple ``(logits, aux1, aux2)`` (what :func:`convnets.train.fit` expects:
    it adds the auxiliary losses with weight ``aux_weight``, 0.3 as in the paper).

    ``width`` scales every channel count (``1.0``: the paper); ``small_input=True`` replaces the
    stem by 3x3 stride-1 convolutions and one 2x2 pool, for 28x28 or 32x32 images.
    """

    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True,
                 dropout: float = 0.4, dropout_aux: float = 0.7, batch_norm: bool = False, lrn: bool = True,
                 branch3_kernel: int = 5, width: float = 1.0, small_input: bool = False):
        super().__init__()
        if branch3_kernel not in (3, 5):
            raise ValueError(f"branch3_kernel must be 5 (the paper) or 3 (torchvision); got {branch3_kernel}")
        if width <= 0:
            raise ValueError(f"width must be positive; got {width}")

        def c(n: int) -> int:
            return max(1, int(round(n * width)))

        bn = batch_norm
        self.aux_logits = aux_logits
        self.small_input = small_input
        lrn_layer = (lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        if small_input:
            self.conv1 = ConvNormAct(in_channels, c(64), 3, batch_norm=bn, named=True)
            self.maxpool1 = nn.Identity()
        else:
            self.conv1 = ConvNormAct(in_channels, c(64), 7, stride=2, padding=3, batch_norm=bn, named=True)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.lrn1 = lrn_layer()
        self.conv2 = ConvNormAct(c(64), c(64), 1, batch_norm=bn, named=True)
        self.conv3 = ConvNormAct(c(64), c(192), 3, batch_norm=bn, named=True)
        self.lrn2 = lrn_layer()
        self.maxpool2 = nn.MaxPool2d(2, stride=2) if small_input else nn.MaxPool2d(3, stride=2, ceil_mode=True)

        def inception(name: str) -> Inception:
            cin, *chs = GOOGLENET_MODULES[name]
            return Inception(c(cin), *[c(v) for v in chs], batch_norm=bn, kernel5=branch3_kernel)

        self.inception3a = inception("3a")
        self.inception3b = inception("3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = inception("4a")
        self.inception4b = inception("4b")
        self.inception4c = inception("4c")
        self.inception4d = inception("4d")
        self.inception4e = inception("4e")
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception5a = inception("5a")
        self.inception5b = inception("5b")
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, dropout_aux, bn,
                                     width=c(128), hidden=c(1024))
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, dropout_aux, bn,
                                     width=c(128), hidden=c(1024))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.num_features = self.inception5b.out_channels
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)

    def _forward(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux: list[torch.Tensor] = []
        x = self.lrn1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.lrn2(self.conv3(self.conv2(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        if with_aux:
            aux.append(self.aux1(x))
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        if with_aux:
            aux.append(self.aux2(x))
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 1024 * width, H/32, W/32)`` (``H/8`` with ``small_input``)."""
        return self._forward(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, dropout, linear; ``pre_logits``: ``(N, num_features)``."""
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor):
        """Logits ``(N, classes)``; in training mode with ``aux_logits``, ``(logits, aux1, aux2)``."""
        x = check_images(x, self.fixed_image_size, type(self).__name__)
        if self.training and self.aux_logits:
            feats, aux = self._forward(x, with_aux=True)
            return (self.forward_head(feats), *aux)
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh main classifier, and fresh last layers in the auxiliary heads."""
        super().reset_classifier(num_classes)
        if self.aux_logits:
            for head in (self.aux1, self.aux2):
                old = head.fc2
                fc_in = old.in_features if isinstance(old, nn.Linear) else head.fc1.out_features
                new = nn.Linear(fc_in, num_classes) if num_classes > 0 else nn.Identity()
                head.fc2 = new.to(head.fc1.weight.device, head.fc1.weight.dtype) if num_classes > 0 else new


@register_model(input_size=(3, 224, 224), min_input_size=(3, 64, 64))
def googlenet(*, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True, dropout: float = 0.4,
              batch_norm: bool = False, lrn: bool = True, branch3_kernel: int = 5) -> GoogLeNet:
    """GoogLeNet, "Going deeper with convolutions" (Szegedy et al. 2014), as published:
    6,998,552 parameters without the auxiliary heads, 13,378,280 with them (1000 classes)."""
    return GoogLeNet(num_classes, in_channels, aux_logits, dropout, batch_norm=batch_norm, lrn=lrn,
                     branch3_kernel=branch3_kernel)


@register_model(input_size=(1, 28, 28))
def googlenet_mini(*, num_classes: int = 10, in_channels: int = 1, aux_logits: bool = True) -> GoogLeNet:
    """GoogLeNet narrowed for 28x28 digits: all nine Inception modules and both auxiliary heads
    at an eighth of the width, with a stride-1 3x3 stem and one 2x2 pool before stage 3
    (feature maps 28 -> 14 -> 7 -> 3), and batch norm after every convolution: without it this
    thin 22-layer network stayed at chance level on MNIST 5k in our runs."""
    return GoogLeNet(num_classes, in_channels, aux_logits, batch_norm=True, lrn=False, width=0.125,
                     small_input=True)
