"""What every model in :mod:`convnets.models` shares: the timm-style hooks and a registry.

Every classifier here derives from :class:`ConvNet` and so offers

- ``forward_features(x)``: the feature map before global pooling / flattening;
- ``forward_head(features, pre_logits=False)``: pooling, classifier; with ``pre_logits=True`` the
  vector the last linear layer sees (what a linear probe trains on);
- ``get_classifier()`` and ``reset_classifier(num_classes)``: the last linear layer, and a fresh
  one with another number of outputs (``0`` gives an identity: a feature extractor).

Families register their public factories with :func:`register_model`, so that tests and
benchmarks can loop over :func:`list_models`. The conventions every factory follows:

- keyword arguments only, with the same names everywhere: ``num_classes``, ``in_channels``
  (and ``image_size`` where the architecture is built for one size);
- registered with the input size ``(C, H, W)`` it is built for and the smallest it accepts,
  ``@register_model(input_size=(3, 224, 224), min_input_size=(3, 32, 32))``; the model it
  returns carries ``default_input_size`` (with its own ``in_channels``), which
  :func:`convnets.receptive.receptive_field` reads;
- traceable by :mod:`torch.fx` (so :func:`torchvision.models.feature_extraction.create_feature_extractor`
  works): the one input check, :func:`check_images`, runs in :meth:`ConvNet.forward` as a leaf
  of the traced graph.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import torch
import torch.fx
from torch import nn

__all__ = ["ConvNet", "register_model", "list_models", "create_model", "model_input_size", "check_images"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_INPUT_SIZES: dict[str, tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]] = {}


def _size(v, what: str) -> tuple[int, int, int] | None:
    if v is None:
        return None
    if not (isinstance(v, (tuple, list)) and len(v) == 3 and all(isinstance(i, int) and i > 0 for i in v)):
        raise ValueError(f"{what} must be (C, H, W) positive ints; got {v!r}")
    return tuple(v)  # type: ignore[return-value]


def register_model(fn: Callable[..., nn.Module] | None = None, *, input_size: tuple[int, int, int] | None = None,
                   min_input_size: tuple[int, int, int] | None = None):
    """Decorator: make a factory available to :func:`create_model` under its function name.

    ``@register_model(input_size=(C, H, W), min_input_size=(C, h, w))`` also records the input
    size the model is built for (the paper's) and the smallest one it runs on (default: the
    same); :func:`model_input_size` returns them, and every model the factory builds gets a
    ``default_input_size`` attribute (``C`` replaced by the ``in_channels`` it was built with,
    ``H, W`` by its ``image_size`` when it takes one). Bare ``@register_model`` records no size.
    """
    def deco(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if f.__name__ in _REGISTRY:
            raise ValueError(f"a model named {f.__name__!r} is already registered")
        size = _size(input_size, "input_size")
        smallest = _size(min_input_size, "min_input_size") or size
        _INPUT_SIZES[f.__name__] = (size, smallest)
        if size is None:
            _REGISTRY[f.__name__] = f
            return f
        sig = inspect.signature(f)

        @functools.wraps(f)
        def factory(*args, **kwargs):
            model = f(*args, **kwargs)
            bound = sig.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            c = bound.arguments.get("in_channels", size[0])
            side = bound.arguments.get("image_size")
            hw = (side, side) if isinstance(side, int) else size[1:]
            model.default_input_size = (int(c), *hw)
            return model

        _REGISTRY[f.__name__] = factory
        return factory

    return deco(fn) if fn is not None else deco


def list_models() -> list[str]:
    """Names of every registered model factory, sorted."""
    return sorted(_REGISTRY)


def model_input_size(name: str, smallest: bool = False) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` input registered model ``name`` is built for with its default arguments
    (``smallest=True``: the smallest it accepts); ``None`` when the factory registered none."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    size, small = _INPUT_SIZES.get(name, (None, None))
    return small if smallest else size


@torch.fx.wrap
def check_images(x: torch.Tensor, image_size: tuple[int, int] | None = None, model: str = "model") -> torch.Tensor:
    """``x`` itself when it is a batch of images ``(N, C, H, W)`` (of side ``image_size`` when
    given); a clear ``ValueError`` otherwise. A leaf for :mod:`torch.fx`: traced graphs call it."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{model} expects images (N, C, H, W); got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if image_size is not None and tuple(x.shape[-2:]) != tuple(image_size):
        raise ValueError(f"this {model} was built for {image_size[0]}x{image_size[1]} images; got "
                         f"{tuple(x.shape[-2:])} (build it with image_size={x.shape[-1]} or resize)")
    return x


def list_models() -> list[str]:
    """Names of every registered model factory, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name, e.g. ``create_model("vgg", config="A", num_classes=10)``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)


class ConvNet(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses implement ``forward_features`` and ``forward_head`` and name their last linear
    layer in ``classifier_name`` (a dotted attribute path, e.g. ``"fc"`` or ``"classifier.6"``).
    ``forward`` checks its input with :func:`check_images` (images ``(N, C, H, W)``, of side
    ``fixed_image_size`` for models built for one size).
    """

    classifier_name: str = "fc"
    #: ``(H, W)`` for architectures whose classifier fixes the input size (LeNet-5); else None
    fixed_image_size: tuple[int, int] | None = None
    #: ``(C, H, W)`` set by the registered factory that built the model
    default_input_size: tuple[int, int, int] | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_images(x, self.fixed_image_size, type(self).__name__)
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer by a freshly initialised one with ``num_classes`` outputs
        (``0``: an identity, so the model returns its pre-logit features)."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer; got {num_classes!r}")
        old = self.get_classifier()
        if isinstance(old, nn.Linear):
            in_features = old.in_features
        elif hasattr(self, "num_features"):
            in_features = int(self.num_features)
        else:  # pragma: no cover - every model here ends in nn.Linear
            raise TypeError(f"cannot tell the input width of {type(old).__name__}")
        new = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(old, nn.Linear):
            new = new.to(device=old.weight.device, dtype=old.weight.dtype) if num_classes > 0 else new
        parent_name, _, child = self.classifier_name.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, child, new)
        self.num_features = in_features
        self.num_classes = num_classes
