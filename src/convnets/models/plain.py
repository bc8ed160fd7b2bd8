"""Plain networks: deep stacks of convolutions (or linear layers) and ReLUs with no skip connection.

Explained in the chapters "Normalization" (``book/02-normalization.md``: :class:`PlainDeepCNN`,
with and without a normalization layer after each convolution) and "Weight initialisation"
(``book/03-initialization.md``: :func:`plain_mlp` and :func:`plain_cnn`, whose signal scale
depends on the weights alone).

:func:`plain_mlp` and :func:`plain_cnn` return an :class:`nn.Sequential` (that is also a
:class:`~convnets.models.ConvNet`), so their layers keep the names ``"0"``, ``"1"``, ... that the
initialisation chapter's probe prints; ``convnets.init`` re-exports both.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..norm import norm_layer
from ._base import ConvNet, check_images, register_model

# the input check stays one call in graphs that torch.fx traces from this module too
torch.fx.wrap("check_images")

__all__ = ["PlainDeepCNN", "plain_deep_cnn", "PlainSequential", "plain_mlp", "plain_cnn"]


class PlainDeepCNN(ConvNet):
    """A VGG-like plain CNN for ``(N, C, H, W)`` images (28x28 by default): ``depth`` 3x3 convs in
    three stages (``H``, ``H/2``, ``H/4``; widths ``w, 2w, 4w``; 2x2 max pooling between), each
    conv followed by a normalization layer (``norm``: ``"none"``, ``"batch"``, ``"layer"``,
    ``"layer_scalar"``, ``"group"`` (``groups`` groups), see :func:`convnets.norm.norm_layer`;
    ``virtual_batch``: batch norm's training statistics over groups of that many images) and ReLU; then global
    average pooling and a linear classifier. No skip connections: the kind of net that is hard to
    train without normalization.

    The conv before a normalization layer has no bias: the normalization subtracts the mean of
    each channel (or group), which removes any constant added before it, and its beta plays the
    bias's role.
    """

    classifier_name = "fc"

    def __init__(self, *, depth: int = 9, width: int = 8, norm: str = "none", num_classes: int = 10,
                 in_channels: int = 1, image_size: int = 28, impl: str = "convnets", groups: int = 4,
                 virtual_batch: int | None = None):
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be at least 3 (one conv per stage); got {depth}")
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2x2 poolings); got {image_size}")
        per_stage = [depth // 3 + (1 if i < depth % 3 else 0) for i in range(3)]
        layers: list[nn.Module] = []
        c_in, size = in_channels, image_size
        for stage, n in enumerate(per_stage):
            c_out = width * 2**stage
            if stage:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"),
                           norm_layer(norm, c_out, (size, size), impl=impl, groups=groups,
                                      virtual_batch=virtual_batch),
                           nn.ReLU(inplace=True)]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.norm = norm
        self.num_features = c_in
        self.num_classes = num_classes
        self.fc = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, 4w, H/4, W/4)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``(N, 4w, h, w)`` -> global average pooling ``(N, 4w)`` -> logits ``(N, num_classes)``."""
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


@register_model(input_size=(1, 28, 28), min_input_size=(1, 8, 8))
def plain_deep_cnn(*, depth: int = 9, width: int = 8, norm: str = "none", num_classes: int = 10,
                   in_channels: int = 1, image_size: int = 28, impl: str = "convnets",
                   groups: int = 4, virtual_batch: int | None = None) -> PlainDeepCNN:
    """The normalization chapter's deep plain CNN (see :class:`PlainDeepCNN`); PyTorch's
    default initialisation (re-initialise with :func:`convnets.init.init_weights`)."""
    return PlainDeepCNN(depth=depth, width=width, norm=norm, num_classes=num_classes,
                        in_channels=in_channels, image_size=image_size, impl=impl, groups=groups,
                        virtual_batch=virtual_batch)


class PlainSequential(nn.Sequential, ConvNet):
    """An :class:`nn.Sequential` of plain layers that also offers the :class:`ConvNet` hooks.

    Its layers keep the names ``"0"``, ``"1"``, ... (and indexing, slicing, ``len``); the last
    ``head`` layers are the head (for :func:`plain_cnn`: pooling, flatten, linear; for
    :func:`plain_mlp`: the last linear layer), the others the features.
    """

    takes_images = True  # plain_mlp takes flat vectors too: it sets False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layers in order, after the input check of every image model (:func:`check_images`)."""
        if self.takes_images:
            x = check_images(x, None, type(self).__name__)
        for layer in self:
            x = layer(x)
        return x

    @property
    def _head_start(self) -> int:
        return len(self) - int(getattr(self, "head_layers", 1))

    @property
    def classifier_name(self) -> str:  # type: ignore[override]
        return str(len(self) - 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Every layer but the head's."""
        for i, layer in enumerate(self):
            if i >= self._head_start:
                break
            x = layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head's layers (without the last linear one when ``pre_logits``)."""
        layers = list(self)[self._head_start:]
        for layer in layers[:-1]:
            x = layer(x)
        return x if pre_logits else layers[-1](x)


def _plain(layers: list[nn.Module], head_layers: int, num_features: int, num_classes: int) -> PlainSequential:
    net = PlainSequential(*layers)
    net.head_layers = head_layers
    net.num_features = num_features
    net.num_classes = num_classes
    return net


def plain_mlp(*, depth: int = 30, width: int = 256, in_features: int | None = None, num_classes: int = 10,
              activation: Callable[[], nn.Module] = nn.ReLU, bias: bool = False, in_channels: int = 1,
              image_size: int = 28) -> PlainSequential:
    """A plain MLP of ``depth`` linear layers: flatten, ``depth - 1`` x (linear ``width`` - ReLU),
    linear to ``num_classes``. Input ``(N, ...)`` with ``in_features`` values per example
    (default ``in_channels * image_size**2``: ``(N, 1, 28, 28)`` images); output ``(N, num_classes)``.

    No normalisation and no skip connection, so the scale of the signal depends on the weights
    alone: the chapter "Weight initialisation" probes it. Not in the model registry: it is no
    convolutional network, and it takes flat vectors as well as images.
    """
    if depth < 2 or width < 1:
        raise ValueError(f"need depth >= 2 and width >= 1; got depth={depth}, width={width}")
    layers: list[nn.Module] = [nn.Flatten()]
    n = in_features if in_features is not None else in_channels * image_size**2
    for _ in range(depth - 1):
        layers += [nn.Linear(n, width, bias=bias), activation()]
        n = width
    layers.append(nn.Linear(n, num_classes, bias=bias))
    net = _plain(layers, 1, n, num_classes)
    net.takes_images = False
    return net


@register_model(input_size=(1, 28, 28), min_input_size=(1, 8, 8))
def plain_cnn(*, depth: int = 30, width: int = 16, in_channels: int = 1, num_classes: int = 10,
              activation: Callable[[], nn.Module] = nn.ReLU, bias: bool = False,
              downsample_at: Sequence[int] = ()) -> PlainSequential:
    """A plain CNN of ``depth`` weight layers: ``depth - 1`` x (conv 3x3 ``width`` - ReLU), global
    average pooling, linear to ``num_classes``. Input ``(N, in_channels, H, W)``; output
    ``(N, num_classes)``.

    ``downsample_at`` lists the (1-based) conv layers that use stride 2 (the initialisation
    chapter trains a net that halves 28x28 twice, which makes each epoch cheaper). No
    normalisation, no skip connection: see the chapter "Weight initialisation".
    """
    if depth < 2 or width < 1:
        raise ValueError(f"need depth >= 2 and width >= 1; got depth={depth}, width={width}")
    bad = [i for i in downsample_at if not 1 <= i <= depth - 1]
    if bad:
        raise ValueError(f"downsample_at must name conv layers 1..{depth - 1}; got {bad}")
    layers: list[nn.Module] = []
    c = in_channels
    for i in range(1, depth):
        stride = 2 if i in downsample_at else 1
        layers += [nn.Conv2d(c, width, 3, stride=stride, padding=1, bias=bias), activation()]
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes, bias=bias)]
    return _plain(layers, 3, c, num_classes)
