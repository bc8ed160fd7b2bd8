"""What every model in :mod:`convnets.models` shares: the timm-style hooks and a registry.

Every classifier here derives from :class:`ConvNet` and so offers

- ``forward_features(x)``: the feature map before global pooling / flattening;
- ``forward_head(features, pre_logits=False)``: pooling, classifier; with ``pre_logits=True`` the
  vector the last linear layer sees (what a linear probe trains on);
- ``get_classifier()`` and ``reset_classifier(num_classes)``: the last linear layer, and a fresh
  one with another number of outputs (``0`` gives an identity: a feature extractor).

Families register their public factories with :func:`register_model`, so that tests and
benchmarks can loop over :func:`list_models`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["ConvNet", "register_model", "list_models", "create_model"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make a factory available to :func:`create_model` under its function name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"a model named {fn.__name__!r} is already registered")
    _REGISTRY[fn.__name__] = fn
    return fn


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
    """

    classifier_name: str = "fc"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
