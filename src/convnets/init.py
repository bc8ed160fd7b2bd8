"""Weight initialisation: named schemes, and a probe of activation and gradient scale per layer.

Explained in the chapter "Weight initialisation" (``book/03-initialization.md``), slide
«Инициализация весов».

- :func:`init_weights` re-initialises every convolution and linear layer of a model with a named
  scheme (see :data:`SCHEMES`): a constant, a normal law of given std, the slide's formula as it
  is written, Xavier/Glorot, He/Kaiming (fan_in or fan_out) and PyTorch's default.
- :func:`fans` and :func:`scheme_std`: the fans of a weight tensor and the std a scheme gives it.
- :func:`probe` runs one forward and one backward pass and records, for every layer, the mean
  and std of its output and of the gradient of the loss with respect to that output; the model
  is left exactly as it was (parameters, their ``.grad``, train/eval mode).
- :func:`plain_mlp` and :func:`plain_cnn`: deep plain ReLU networks (no normalisation, no skip
  connection), the test subjects of the chapter; they live in :mod:`convnets.models.plain` and
  are re-exported here (with their old positional order).

    >>> net = plain_cnn(depth=30, width=16)
    >>> init_weights(net, "he", mode="fan_in")                       # doctest: +SKIP
    >>> probe(net, X, y).table()                                      # doctest: +SKIP
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .models import plain as _plain

__all__ = [
    "SCHEMES",
    "fans",
    "scheme_std",
    "init_weights",
    "init_layer_",
    "weight_layers",
    "ProbeResult",
    "probe",
    "plain_mlp",
    "plain_cnn",
    "hidden_unit_spread",
]

#: The schemes :func:`init_weights` knows, with what each draws (``n`` = fan_in, ``m`` = fan_out).
SCHEMES: dict[str, str] = {
    "constant": "every weight equals `value` (breaks nothing, learns nothing: the symmetry problem)",
    "normal": "N(0, std^2) with a fixed `std`, whatever the layer's size",
    "slide": "(2 / sqrt(n)) * N(0, 1), the slide's formula as written: variance 4/n",
    "xavier": "Glorot & Bengio 2010, normal: N(0, 2 / (n + m))",
    "xavier_uniform": "Glorot & Bengio 2010, uniform: U(-a, a), a = sqrt(6 / (n + m))",
    "he": "He et al. 2015, normal: N(0, 2 / fan), fan = n (mode='fan_in') or m (mode='fan_out')",
    "he_uniform": "He et al. 2015, uniform: U(-a, a), a = sqrt(6 / fan)",
    "default": "PyTorch's own reset_parameters(): U(-1/sqrt(n), 1/sqrt(n)), variance 1/(3n)",
}

#: Layer types whose weights the schemes set (the others are left alone).
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a linear weight ``(out, in)`` or a convolution weight
    ``(out, in / groups, k1, k2, ...)``.

    fan_in = in_channels x kernel area is the number of inputs one output sums over;
    fan_out = out_channels x kernel area is the number of outputs one input reaches. These are
    the ``n`` of the slide and of He et al. 2015. (For a transposed convolution, whose weight is
    ``(in, out, k...)``, the two come out swapped, as in :mod:`torch.nn.init`.)
    """
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"fans() expects a weight tensor; got {type(weight).__name__}")
    if weight.ndim < 2:
        raise ValueError(
            f"fans are defined for weights with at least 2 dimensions (out, in, ...); got shape "
            f"{tuple(weight.shape)} (a bias or a norm layer's gamma has no fan)"
        )
    receptive = math.prod(weight.shape[2:]) if weight.ndim > 2 else 1
    return int(weight.shape[1]) * receptive, int(weight.shape[0]) * receptive


def scheme_std(scheme: str, fan_in: int, fan_out: int, mode: str = "fan_in",
               std: float | None = None) -> float:
    """The standard deviation of a weight that ``scheme`` draws for a layer with these fans.

    ``constant`` has std 0; ``normal`` returns ``std``. Uniform laws U(-a, a) have std a/sqrt(3).
    """
    _check_scheme(scheme)
    _check_mode(mode)
    if fan_in < 1 or fan_out < 1:
        raise ValueError(f"fans must be positive; got fan_in={fan_in}, fan_out={fan_out}")
    fan = fan_in if mode == "fan_in" else fan_out
    if scheme == "constant":
        return 0.0
    if scheme == "normal":
        if std is None:
            raise ValueError("scheme 'normal' needs std=..., e.g. init_weights(net, 'normal', std=0.01)")
        return float(std)
    if scheme == "slide":
        return 2.0 / math.sqrt(fan_in)
    if scheme in ("xavier", "xavier_uniform"):
        return math.sqrt(2.0 / (fan_in + fan_out))
    if scheme in ("he", "he_uniform"):
        return math.sqrt(2.0 / fan)
    # default: U(-b, b) with b = 1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5))
    return 1.0 / math.sqrt(3.0 * fan_in)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")


def _check_mode(mode: str) -> None:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' (forward pass) or 'fan_out' (backward pass); got {mode!r}")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every convolution and linear layer of ``model``, in definition order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


@torch.no_grad()
def init_layer_(
    layer: nn.Module,
    scheme: str,
    *,
    mode: str = "fan_in",
    std: float | None = None,
    value: float = 0.1,
    gain: float = 1.0,
    bias: float | None = 0.0,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Re-initialise one convolution or linear ``layer`` in place with ``scheme``; return it.

    ``gain`` multiplies the std of every random scheme (``gain=sqrt(2)`` on ``"he"`` gives the
    slide's variance for fan_in); ``bias`` is the value biases get (``None`` leaves them; ``"default"``
    always draws them as PyTorch does, U(-1/sqrt(n), 1/sqrt(n))). ``generator`` makes the draw reproducible
    without touching the global seed.
    """
    if not isinstance(layer, WEIGHT_LAYERS):
        raise TypeError(
            f"init_layer_ sets convolution and linear layers; got {type(layer).__name__}. "
            "Use init_weights(model, ...) to initialise every such layer of a model."
        )
    _check_scheme(scheme)
    _check_mode(mode)
    w = layer.weight
    if scheme == "default":
        if generator is None:  # the very values torch would draw
            layer.reset_parameters()
        else:  # the same law, from the caller's generator
            b = 1.0 / math.sqrt(fans(w)[0])
            w.uniform_(-b, b, generator=generator)
            if getattr(layer, "bias", None) is not None:
                layer.bias.uniform_(-b, b, generator=generator)
        if gain != 1.0:
            w.mul_(gain)
        return layer
    fan_in, fan_out = fans(w)
    s = gain * scheme_std(scheme, fan_in, fan_out, mode, std)
    if scheme == "constant":
        w.fill_(value)
    elif scheme in ("xavier_uniform", "he_uniform"):
        a = math.sqrt(3.0) * s
        w.uniform_(-a, a, generator=generator)
    else:
        w.normal_(0.0, s, generator=generator)
    if bias is not None and getattr(layer, "bias", None) is not None:
        layer.bias.fill_(bias)
    return layer


def init_weights(
    model: nn.Module,
    scheme: str,
    *,
    mode: str = "fan_in",
    std: float | None = None,
    value: float = 0.1,
    gain: float = 1.0,
    bias: float | None = 0.0,
    generator: torch.Generator | None = None,
    layers: Iterable[nn.Module] | None = None,
) -> nn.Module:
    """Re-initialise every convolution and linear layer of ``model`` with a named ``scheme``.

    Parameters
    ----------
    scheme : one of :data:`SCHEMES`: ``"constant"``, ``"normal"``, ``"slide"``, ``"xavier"``,
        ``"xavier_uniform"``, ``"he"``, ``"he_uniform"``, ``"default"``.
    mode : ``"fan_in"`` (keeps the forward signal's scale) or ``"fan_out"`` (keeps the gradient's
        scale), for the He schemes.
    std : the std of scheme ``"normal"``.  value : the weight of scheme ``"constant"``.
    gain : multiplies the std of the random schemes.  bias : the value biases get (0 by default).
    layers : restrict to these modules (default: all of :func:`weight_layers`).

    Normalisation layers, embeddings and anything else are left untouched. Returns ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"init_weights expects an nn.Module; got {type(model).__name__}")
    targets = [m for _, m in weight_layers(model)] if layers is None else list(layers)
    for m in targets:
        init_layer_(m, scheme, mode=mode, std=std, value=value, gain=gain, bias=bias, generator=generator)
    return model


@dataclass
class ProbeResult:
    """What :func:`probe` recorded: one entry per probed layer, in the order they ran.

    ``act_*`` describe each layer's output (for a convolution or linear layer: the
    pre-activation ``y = W x + b``); ``grad_*`` describe dL/d(output); ``weight_grad_std`` the
    std of dL/dW (``nan`` for layers without a weight). Stds are torch's default (unbiased).
    """

    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    act_mean: list[float] = field(default_factory=list)
    act_std: list[float] = field(default_factory=list)
    grad_mean: list[float] = field(default_factory=list)
    grad_std: list[float] = field(default_factory=list)
    weight_grad_std: list[float] = field(default_factory=list)
    loss: float = float("nan")

    def __len__(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeResult":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def table(self, digits: int = 3) -> str:
        """A plain-text table, one row per layer."""
        head = f"{'#':>3} {'layer':<14} {'type':<7} {'act mean':>10} {'act std':>10} {'grad std':>10}"
        rows = [head, "-" * len(head)]
        for i, (n, k, m, s, g) in enumerate(zip(self.names, self.kinds, self.act_mean, self.act_std, self.grad_std)):
            rows.append(f"{i + 1:>3} {n[:14]:<14} {k[:7]:<7} {m:>10.{digits}g} {s:>10.{digits}g} {g:>10.{digits}g}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return self.table()


def probe(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    layer_types: Sequence[type[nn.Module]] | None = None,
) -> ProbeResult:
    """One forward and one backward pass of ``model`` on ``X (N, ...)`` with labels ``y (N,)``;
    per-layer statistics.

    The probe's definition (the same in the chapter "Weight initialisation" and in assignment
    02-initialization): the loss is the mean cross-entropy of the model's output against ``y``,
    ``F.cross_entropy(model(X), y)`` (or ``loss_fn(output, y)`` when given), the very loss whose
    gradient the first step of training follows. For every module of ``layer_types`` (default:
    convolution and linear layers) it records the mean and the std (torch's default, unbiased)
    of the module's output over all its elements, the same for the gradient of the loss with
    respect to that output, and the std of the gradient with respect to the module's weight.

    The model is not changed: gradients come from :func:`torch.autograd.grad`, so no ``.grad``
    is written; hooks are removed and the train/eval mode is left as it was (a model in
    training mode uses batch statistics, so put it in eval mode first if that matters).
    Works with in-place activations (``nn.ReLU(inplace=True)``): a tensor hook registered before
    an in-place change receives the gradient of the value before the change.
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError("probe needs the labels y (N,): its backward pass starts from the "
                        "cross-entropy of the output against them")
    if not isinstance(model, nn.Module):
        raise TypeError(f"probe expects an nn.Module; got {type(model).__name__}")
    if not isinstance(X, torch.Tensor) or not X.is_floating_point():
        raise TypeError("X must be a floating-point tensor of inputs (N, ...)")
    types = tuple(layer_types) if layer_types is not None else WEIGHT_LAYERS
    device = next((p.device for p in model.parameters()), X.device)
    X = X.to(device).detach().clone().requires_grad_(True)
    records: list[dict] = []
    handles = []
    by_module: dict[int, str] = {}

    def make_hook(name: str, module: nn.Module):
        def hook(mod, inputs, out):
            if not isinstance(out, torch.Tensor):
                return
            o = out.detach().float()
            rec = {"name": name, "kind": type(mod).__name__, "act_mean": o.mean().item(),
                   "act_std": o.std().item() if o.numel() > 1 else 0.0,
                   "grad_mean": float("nan"), "grad_std": float("nan"), "module": mod}
            records.append(rec)
            if out.requires_grad:
                def grad_hook(g, rec=rec):
                    g = g.detach().float()
                    rec["grad_mean"] = g.mean().item()
                    rec["grad_std"] = g.std().item() if g.numel() > 1 else 0.0
                out.register_hook(grad_hook)
        return hook

    for name, m in model.named_modules():
        if isinstance(m, types) and m is not model:
            by_module[id(m)] = name
            handles.append(m.register_forward_hook(make_hook(name, m)))
    if not handles:
        raise ValueError(f"model has no layers of types {[t.__name__ for t in types]} to probe")
    weights = [m.weight for m in model.modules() if id(m) in by_module
               and isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.requires_grad]
    try:
        with torch.enable_grad():
            out = model(X)
            if isinstance(out, (tuple, list)):
                out = out[0]
            loss = (loss_fn or nn.functional.cross_entropy)(out, y.to(out.device))
            grads = torch.autograd.grad(loss, [X] + weights, allow_unused=True)
            loss_value = loss.item()
    finally:
        for h in handles:
            h.remove()
    wgrad = {id(w): g for w, g in zip(weights, grads[1:])}
    res = ProbeResult(loss=loss_value)
    for r in records:
        res.names.append(r["name"])
        res.kinds.append(r["kind"])
        res.act_mean.append(r["act_mean"])
        res.act_std.append(r["act_std"])
        res.grad_mean.append(r["grad_mean"])
        res.grad_std.append(r["grad_std"])
        w = getattr(r["module"], "weight", None)
        gw = wgrad.get(id(w)) if isinstance(w, torch.Tensor) else None
        res.weight_grad_std.append(gw.float().std().item() if gw is not None else float("nan"))
    return res


def plain_mlp(depth: int = 30, width: int = 256, in_features: int = 784, num_classes: int = 10,
              activation: Callable[[], nn.Module] = nn.ReLU, bias: bool = False) -> nn.Sequential:
    """:func:`convnets.models.plain.plain_mlp` (moved there), kept here with its old positional
    order for released notebooks: a plain MLP of ``depth`` linear layers (an ``nn.Sequential``)."""
    return _plain.plain_mlp(depth=depth, width=width, in_features=in_features, num_classes=num_classes,
                            activation=activation, bias=bias)


def plain_cnn(depth: int = 30, width: int = 16, in_channels: int = 1, num_classes: int = 10,
              activation: Callable[[], nn.Module] = nn.ReLU, bias: bool = False,
              downsample_at: Sequence[int] = ()) -> nn.Sequential:
    """:func:`convnets.models.plain.plain_cnn` (moved there), kept here with its old positional
    order for released notebooks: a plain CNN of ``depth`` weight layers (an ``nn.Sequential``)."""
    return _plain.plain_cnn(depth=depth, width=width, in_channels=in_channels, num_classes=num_classes,
                            activation=activation, bias=bias, downsample_at=downsample_at)


def hidden_unit_spread(layer: nn.Linear | nn.Conv2d) -> float:
    """How different the units of a layer are: the largest distance between the incoming weight
    vector of any unit (row of ``weight``) and the mean of all units' vectors.

    0 means every unit computes the same function (the symmetry that a constant initialisation
    never breaks); see the chapter "Weight initialisation".
    """
    if not isinstance(layer, WEIGHT_LAYERS):
        raise TypeError(f"expected a linear or convolution layer; got {type(layer).__name__}")
    W = layer.weight.detach().flatten(1).float()
    return (W - W.mean(0, keepdim=True)).norm(dim=1).max().item()
