"""Transfer learning: freezing, head replacement, per-stage learning rates, feature extraction,
and loading pretrained weights (the project's own checkpoints, torchvision's ImageNet weights).

Explained in the chapter "Transfer learning" (``book/07-transfer-learning.md``).

A network is seen as a sequence of *stages*, from the input to the classifier
(:func:`stages`): for a ResNet ``conv1+bn1`` (the stem), ``layer1``, ..., ``fc``. Then

- :func:`freeze` stops the gradient of every stage up to a given one (and keeps their batch
  norms in eval mode, so their running statistics stay those of the source task);
- :func:`replace_head` puts a fresh linear layer with the target task's number of classes;
- :func:`param_groups` gives each trainable stage its own learning rate, the head the largest
  and each earlier stage ``decay`` times smaller (ULMFiT's ``decay = 2.6``);
- :func:`extract_features` returns the vectors the classifier sees (or any stage's output),
  on which a linear probe is a logistic regression (:func:`fit_logistic_regression`);
- :func:`load_pretrained` and :func:`torchvision_pretrained` load weights, offline unless a
  download is explicitly allowed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .utils import eval_mode, iter_batches, model_device

__all__ = [
    "stages",
    "freeze",
    "unfreeze",
    "trainable_stages",
    "replace_head",
    "find_classifier",
    "param_groups",
    "extract_features",
    "fit_logistic_regression",
    "load_pretrained",
    "torchvision_pretrained",
    "torchvision_weights_path",
    "PretrainedWeightsNotAvailableError",
    "ULMFIT_DECAY",
]

#: ULMFiT's factor between the learning rates of consecutive stages (Howard & Ruder, 2018):
#: ``lr_(l-1) = lr_l / 2.6``.
ULMFIT_DECAY = 2.6

_HOOK_ATTR = "_convnets_frozen_bn_hook"


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def find_classifier(model: nn.Module) -> tuple[str, nn.Linear]:
    """``(dotted name, module)`` of the model's last linear layer: ``get_classifier()`` for a
    :class:`convnets.models.ConvNet`, otherwise the last :class:`~torch.nn.Linear` registered
    (``fc`` of torchvision's ResNets, ``classifier.6`` of its VGGs)."""
    name = getattr(model, "classifier_name", None)
    if isinstance(name, str):
        mod = model.get_submodule(name)
        if isinstance(mod, nn.Linear):
            return name, mod
    last = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = (n, m)
    if last is None:
        raise TypeError(
            f"{type(model).__name__} has no nn.Linear layer: cannot tell which layer is its "
            "classifier; pass a model that ends in a linear layer"
        )
    return last


def stages(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The model's stages, from the input to the classifier, as ``[(name, [modules]), ...]``.

    Top-level children without parameters (ReLU, pooling) are skipped. A run of consecutive
    *leaf* children (``conv1``, ``bn1``: a stem) forms one stage named ``"conv1+bn1"``; every
    container (``layer1``, ``features``) is a stage of its own, and so is the classifier.
    For :func:`convnets.models.resnet_cifar`: ``conv1+bn1, layer1, layer2, layer3, fc``.
    """
    out: list[tuple[str, list[nn.Module]]] = []
    run_names: list[str] = []
    run_mods: list[nn.Module] = []

    def flush() -> None:
        if run_mods:
            out.append(("+".join(run_names), list(run_mods)))
            run_names.clear()
            run_mods.clear()

    clf_name = find_classifier(model)[0] if any(isinstance(m, nn.Linear) for m in model.modules()) else None
    for name, child in model.named_children():
        if not _has_params(child):
            continue
        is_leaf = not any(True for _ in child.children())
        if is_leaf and name != clf_name:
            run_names.append(name)
            run_mods.append(child)
        else:
            flush()
            out.append((name, [child]))
    flush()
    if not out:
        raise ValueError(f"{type(model).__name__} has no parameters: nothing to split into stages")
    return out


def _stage_index(model_stages: list[tuple[str, list[nn.Module]]], key: str) -> int:
    for i, (name, _) in enumerate(model_stages):
        if key == name or key in name.split("+"):
            return i
    names = [n for n, _ in model_stages]
    raise ValueError(f"no stage named {key!r}; the stages are {names} (or a child name within one)")


def _freeze_bn_hook(module: nn.Module, args) -> None:
    # A frozen batch norm normalises with the source task's running statistics and does not
    # update them, even while the rest of the model is in training mode.
    module.training = False


def freeze(model: nn.Module, until: str | None = None, bn_eval: bool = True) -> nn.Module:
    """Freeze the stages from the input up to and including ``until`` (a name from
    :func:`stages`, or one of its children such as ``"bn1"``); ``until=None`` freezes every
    stage but the classifier (a linear probe). Returns ``model`` (changed in place).

    Frozen parameters get ``requires_grad=False``. With ``bn_eval=True`` every batch norm in a
    frozen stage stays in eval mode even under ``model.train()``: it keeps the running
    statistics of the source task instead of re-estimating them from target batches.
    :func:`unfreeze` undoes both.
    """
    st = stages(model)
    if until is None:
        clf = find_classifier(model)[1]
        last = len(st) - 1
        if not any(m is clf for m in st[-1][1]):
            raise ValueError("the classifier is not the last stage; name the stage to freeze up to with until=")
        last -= 1
    else:
        if not isinstance(until, str):
            raise TypeError(f"until must be a stage name (str) or None; got {type(until).__name__}")
        last = _stage_index(st, until)
    for _, mods in st[: last + 1]:
        for m in mods:
            for p in m.parameters():
                p.requires_grad_(False)
            if bn_eval:
                for sub in m.modules():
                    if isinstance(sub, _BatchNorm) and not hasattr(sub, _HOOK_ATTR):
                        setattr(sub, _HOOK_ATTR, sub.register_forward_pre_hook(_freeze_bn_hook))
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again and let batch norms follow ``model.train()``."""
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        if hasattr(m, _HOOK_ATTR):
            getattr(m, _HOOK_ATTR).remove()
            delattr(m, _HOOK_ATTR)
            m.training = model.training
    return model


def trainable_stages(model: nn.Module) -> list[str]:
    """Names of the stages with at least one parameter that requires a gradient."""
    return [n for n, mods in stages(model) if any(p.requires_grad for m in mods for p in m.parameters())]


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Put a freshly initialised classifier with ``num_classes`` outputs in place of the last
    linear layer (trainable, same device and dtype). Returns ``model`` (changed in place).

    Uses ``reset_classifier`` on :class:`convnets.models.ConvNet`; on other models (torchvision's)
    replaces the last :class:`~torch.nn.Linear`.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    name, old = find_classifier(model)
    if hasattr(model, "reset_classifier") and getattr(model, "classifier_name", None) == name:
        model.reset_classifier(num_classes)
        return model
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None).to(
        device=old.weight.device, dtype=old.weight.dtype
    )
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return model


def param_groups(
    model: nn.Module,
    lr: float,
    decay: float = ULMFIT_DECAY,
    weight_decay: float | None = None,
) -> list[dict]:
    """Optimizer parameter groups, one per stage with trainable parameters: the last stage (the
    head) gets ``lr``, the stage before ``lr / decay``, the one before ``lr / decay**2``, ...

    The exponent counts stages from the head over *all* stages, frozen ones included, so a
    stage's learning rate does not depend on what else is frozen. Each group is
    ``{"params": [...], "lr": ..., "name": stage}`` (plus ``weight_decay`` when given); pass
    the list to any ``torch.optim`` optimizer. ``decay=1`` gives one learning rate everywhere.
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr!r}")
    if not decay >= 1:
        raise ValueError(f"decay must be >= 1 (earlier stages learn more slowly); got {decay!r}")
    st = stages(model)
    groups = []
    seen: set[int] = set()
    for i, (name, mods) in enumerate(st):
        params = []
        for m in mods:
            for p in m.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        if not params:
            continue
        g = {"params": params, "lr": lr / decay ** (len(st) - 1 - i), "name": name}
        if weight_decay is not None:
            g["weight_decay"] = weight_decay
        groups.append(g)
    if not groups:
        raise ValueError("no parameter of the model requires a gradient: unfreeze something first")
    return groups


def _pre_logits_fn(model: nn.Module):
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        return lambda X: model.forward_head(model.forward_features(X), pre_logits=True)
    _, clf = find_classifier(model)
    box: list[torch.Tensor] = []

    def fn(X: torch.Tensor) -> torch.Tensor:
        h = clf.register_forward_hook(lambda m, inp, out: box.append(inp[0]))
        try:
            model(X)
        finally:
            h.remove()
        return box.pop()

    return fn


def _layer_fn(model: nn.Module, layer: str, pool: bool):
    mod = model.get_submodule(layer)
    box: list[torch.Tensor] = []

    def fn(X: torch.Tensor) -> torch.Tensor:
        h = mod.register_forward_hook(lambda m, inp, out: box.append(out))
        try:
            model(X)
        finally:
            h.remove()
        out = box.pop()
        if out.ndim == 4 and pool:
            return out.mean(dim=(2, 3))
        return torch.flatten(out, 1)

    return fn


@torch.no_grad()
def extract_features(
    model: nn.Module,
    data: torch.Tensor | Iterable,
    layer: str | None = None,
    pool: bool = True,
    batch_size: int = 500,
    device: str | torch.device | None = None,
):
    """Features of ``model`` for images ``(N, C, H, W)`` or a loader of ``(X, y)`` batches, in
    eval mode (the mode is restored), as float32 on the CPU.

    ``layer=None`` gives the vectors the classifier sees, ``(N, D)`` (``forward_head(...,
    pre_logits=True)`` on a :class:`convnets.models.ConvNet`); a module name such as
    ``"layer2"`` gives that module's output, averaged over space to ``(N, C)`` when ``pool``
    (else flattened). Returns ``features`` for a tensor, ``(features, labels)`` for a loader.
    """
    dev = model_device(model, device)
    fn = _pre_logits_fn(model) if layer is None else _layer_fn(model, layer, pool)
    feats, labels = [], []
    with eval_mode(model):
        for X, y in iter_batches(data, batch_size):
            if y is None and not isinstance(data, torch.Tensor):
                raise TypeError("each batch from the loader must be a pair (images, labels)")
            feats.append(fn(X.to(dev)).float().cpu())
            if y is not None:
                labels.append(y.cpu())
    F = torch.cat(feats) if feats else torch.empty(0)
    if isinstance(data, torch.Tensor):
        return F
    return F, torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)


def fit_logistic_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    C: float = 1.0,
    max_iter: int = 500,
) -> nn.Linear:
    """A linear probe trained the way scikit-learn fits ``LogisticRegression(C=C)``: full-batch
    L-BFGS on ``sum_i CE(W x_i + b, y_i) + ||W||^2 / (2 C)`` (no penalty on ``b``).

    The objective is strictly convex, so this layer and scikit-learn's (``coef_``,
    ``intercept_``) reach the same optimum up to the solvers' tolerance. ``features (N, D)``,
    ``labels (N,)`` int64. Returns an :class:`~torch.nn.Linear` ``(D -> num_classes)``.
    """
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise ValueError(
            f"features must be (N, D) and labels (N,); got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if not C > 0:
        raise ValueError(f"C (inverse regularisation strength) must be positive; got {C!r}")
    X = features.detach().double()
    y = labels.long()
    K = int(num_classes if num_classes is not None else int(y.max()) + 1)
    N = len(X)
    W = torch.zeros(K, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        # Divided by N (same optimum) to keep the scale of the gradient independent of N.
        loss = (nn.functional.cross_entropy(X @ W.T + b, y, reduction="sum") + (W * W).sum() / (2 * C)) / N
        loss.backward()
        return loss

    opt.step(closure)
    lin = nn.Linear(X.shape[1], K)
    with torch.no_grad():
        lin.weight.copy_(W.float())
        lin.bias.copy_(b.float())
    return lin


def load_pretrained(model: nn.Module, source: str | Path | dict, skip_head: bool = False,
                    strict: bool = True) -> nn.Module:
    """Load weights into ``model`` from a checkpoint written by :func:`convnets.train.save_checkpoint`,
    from a file holding a plain ``state_dict``, or from a ``state_dict`` itself.

    ``skip_head=True`` leaves out the classifier's weights (the source task had another number
    of classes): every other key must then match. Returns ``model``.
    """
    if isinstance(source, dict):
        state = source
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no weights at {path.resolve()}: train the source model first or check the path")
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a convnets checkpoint
    if not isinstance(state, dict):
        raise ValueError(f"expected a state_dict (a dict of tensors); got {type(state).__name__}")
    if skip_head:
        head = find_classifier(model)[0]
        state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(head + ".")]
        if strict and (missing or unexpected):
            raise RuntimeError(f"weights do not match the model: missing {missing}, unexpected {unexpected}")
    else:
        model.load_state_dict(state, strict=strict)
    return model


class PretrainedWeightsNotAvailableError(FileNotFoundError):
    """torchvision's pretrained weights are not on disk and downloading was not allowed."""


def _tv_weights(name: str, weights: str):
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(name)
    except (ValueError, KeyError) as e:
        raise ValueError(f"torchvision has no model named {name!r} (e.g. 'resnet18', 'vgg16')") from e
    try:
        return enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError as e:
        raise ValueError(f"{name} has no weights {weights!r}; choose from {[w.name for w in enum]} or 'DEFAULT'") from e


def torchvision_weights_path(name: str, weights: str = "DEFAULT") -> Path:
    """Where torch keeps the file of torchvision's weights ``weights`` for model ``name`` once
    downloaded: ``$TORCH_HOME/hub/checkpoints/<file>`` (``~/.cache/torch`` by default)."""
    w = _tv_weights(name, weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)


def torchvision_pretrained(
    name: str = "resnet18",
    weights: str = "DEFAULT",
    download: bool = False,
    weights_path: str | Path | None = None,
) -> nn.Module:
    """torchvision's model ``name`` with its pretrained ``weights`` (ImageNet for the classifiers),
    in eval mode; the matching preprocessing is ``torchvision.models.get_model_weights(name)[weights].transforms()``.

    The weights come from ``weights_path`` when given, else from torch's cache
    (:func:`torchvision_weights_path`); they are downloaded only with ``download=True``.
    Otherwise :class:`PretrainedWeightsNotAvailableError` says where to put the file.
    """
    from torchvision.models import get_model

    w = _tv_weights(name, weights)
    model = get_model(name, weights=None)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise PretrainedWeightsNotAvailableError(f"no weights file at {path.resolve()}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        path = torchvision_weights_path(name, weights)
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
        elif download:
            state = torch.hub.load_state_dict_from_url(w.url, progress=False, check_hash=True)
        else:
            raise PretrainedWeightsNotAvailableError(
                f"torchvision's {w} weights for {name} are not on this machine (looked for {path}). "
                f"Either allow the download with torchvision_pretrained({name!r}, download=True) on a "
                f"machine with internet access, or fetch {w.url} yourself and put it at {path} "
                f"(or pass weights_path=...)."
            )
    load_pretrained(model, state)
    return model.eval()
