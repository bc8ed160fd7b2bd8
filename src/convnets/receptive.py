"""Receptive fields: how large a window of the input one unit of a layer sees.

Explained in the chapters "Classic architectures" (``book/05-classic-architectures.md``: why two
stacked 3x3 convolutions see as far as one 5x5, how far a network's last layer sees) and "What
convolutional networks learn" (``book/08-interpretation.md``: the patches under a unit).

For a chain of sliding-window layers with kernel ``k``, stride ``s``, padding ``p`` and dilation
``d``, the window of one output unit in the input grows by the recurrence

.. math::

    r_l = r_{l-1} + (k_l - 1)\\, d_l\\, j_{l-1}, \\qquad j_l = j_{l-1}\\, s_l, \\qquad
    a_l = a_{l-1} - p_l\\, j_{l-1},

from ``r_0 = 1`` (one pixel), ``j_0 = 1`` (the jump: input pixels between neighbouring units)
and ``a_0 = 0`` (the left edge of unit 0's window; negative when it reaches into the padding).
Element-wise layers (activations, batch norm, LRN, dropout) leave the window as it is.

Each function is named for what it returns:

- :func:`receptive_field_table` (a list of :class:`RFRow`, one per layer) and
  :func:`receptive_field_size` (an ``int``) read a *chain* (an ``nn.Sequential``, possibly nested,
  or a list of ``(kernel, stride[, padding[, dilation]])`` tuples) layer by layer;
- :func:`receptive_field` (a :class:`ReceptiveField`: size, stride and offset per axis) traces
  the forward pass of any model, so it follows branches (Inception, residual blocks, ``cat``).
  ``convnets.interpret.receptive_field`` is the same function.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence, Union

import torch
from torch import nn

from .utils import eval_mode, model_device

__all__ = ["RFRow", "receptive_field_table", "receptive_field_size", "layer_windows", "as_records",
           "ReceptiveField", "receptive_field", "layer_name", "StopForward"]

Spec = Union[tuple[int, int], tuple[int, int, int], tuple[int, int, int, int]]

_WINDOW = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
           nn.AvgPool3d)
# Layers after which every unit sees the whole input: the table stops there.
_GLOBAL_LAYERS = (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


@dataclass(frozen=True)
class RFRow:
    """One layer of the table: its window parameters and the receptive field of its output.

    ``size``: side of the input window one output unit sees; ``jump``: input pixels between
    neighbouring output units; ``start``: left edge of unit 0's window (negative in padding).
    """

    name: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    size: int
    jump: int
    start: int


def _one(v, what: str) -> int:
    """A square layer's single number (``3`` or ``(3, 3)``); non-square raises."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"{what} {tuple(v)} is not the same along every axis; this calculator "
                             "handles square windows only (use receptive_field)")
        v = v[0]
    if not isinstance(v, int):
        raise TypeError(f"{what} must be an int; got {v!r}")
    return v


def layer_windows(layers: nn.Module | Iterable[Spec]) -> list[tuple[str, int, int, int, int]]:
    """``(name, kernel, stride, padding, dilation)`` of each sliding-window layer of a chain.

    Modules are walked in registration order (which is the order of execution for an
    ``nn.Sequential``); the walk stops at the first global layer (``Linear``, ``Flatten``,
    adaptive pooling).
    """
    out: list[tuple[str, int, int, int, int]] = []
    if isinstance(layers, nn.Module):
        for name, m in layers.named_modules():
            if next(m.children(), None) is not None:
                continue  # a container: its leaves come next
            if isinstance(m, _GLOBAL_LAYERS):
                break
            if isinstance(m, _WINDOW):
                k = _one(m.kernel_size, "kernel_size")
                s = _one(m.stride if m.stride is not None else m.kernel_size, "stride")
                p = m.padding
                if isinstance(p, str):
                    if p == "valid":
                        p = 0
                    elif p == "same":
                        p = (k - 1) * _one(getattr(m, "dilation", 1), "dilation") // 2
                    else:  # pragma: no cover - torch accepts only these two strings
                        raise ValueError(f"unknown padding {p!r} in layer {name}")
                p = _one(p, "padding")
                d = _one(getattr(m, "dilation", 1), "dilation")
                out.append((name or type(m).__name__, k, s, p, d))
        return out
    for i, spec in enumerate(layers):
        if not isinstance(spec, (tuple, list)) or not 2 <= len(spec) <= 4 or not all(isinstance(v, int) for v in spec):
            raise TypeError(f"layer {i}: expected (kernel, stride[, padding[, dilation]]) ints; got {spec!r}")
        k, s, p, d = list(spec) + [0, 1][len(spec) - 2:]  # defaults: padding 0, dilation 1
        out.append((str(i), k, s, p, d))
    return out


def receptive_field_table(layers: nn.Module | Sequence[Spec]) -> list[RFRow]:
    """One :class:`RFRow` per sliding-window layer of a chain: the receptive field after it.

    ``layers``: an ``nn.Sequential`` (nested ones are flattened) or a list of
    ``(kernel, stride[, padding[, dilation]])`` tuples. ``[asdict(r) for r in table]`` makes a
    ``pandas.DataFrame``.

    >>> [r.size for r in receptive_field_table([(3, 1, 1), (3, 1, 1)])]
    [3, 5]
    """
    rows: list[RFRow] = []
    size, jump, start = 1, 1, 0
    for name, k, s, p, d in layer_windows(layers):
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ValueError(f"layer {name}: kernel, stride, dilation must be >= 1 and padding >= 0; "
                             f"got kernel={k}, stride={s}, padding={p}, dilation={d}")
        start -= p * jump
        size += (k - 1) * d * jump
        jump *= s
        rows.append(RFRow(name, k, s, p, d, size, jump, start))
    return rows


def receptive_field_size(layers: nn.Module | Sequence[Spec]) -> int:
    """Side of the input window seen by one unit of the chain's last sliding-window layer
    (1 for a chain without any).

    >>> receptive_field_size([(3, 1, 1), (3, 1, 1)])
    5
    """
    table = receptive_field_table(layers)
    return table[-1].size if table else 1


def as_records(table: list[RFRow]) -> list[dict]:
    """The table as a list of dicts (for ``pandas.DataFrame``)."""
    return [asdict(r) for r in table]


# --------------------------------------------------------------------------------------------
# Traced receptive field (any graph)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceptiveField:
    """The input window of one unit of a layer, per axis ``(height, width)``.

    ``size``: the window's side in input pixels; ``stride``: how far the window moves when the
    unit moves by one position (the product of the strides before it); ``start``: the input
    coordinate of the top-left corner of unit ``(0, 0)``'s window (negative where it reaches
    into the padding). Unit ``(i, j)`` sees rows ``start[0] + i * stride[0]`` to that plus
    ``size[0]`` (exclusive), and the same for columns.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[int, int]

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of unit ``(i, j)``'s window (bottom/right exclusive)."""
        top = self.start[0] + i * self.stride[0]
        left = self.start[1] + j * self.stride[1]
        return top, left, top + self.size[0], left + self.size[1]

    @property
    def center_offset(self) -> tuple[float, float]:
        """The input coordinate of the centre of unit ``(0, 0)``'s window."""
        return (self.start[0] + (self.size[0] - 1) / 2, self.start[1] + (self.size[1] - 1) / 2)


_IDENTITY_RF = ReceptiveField((1, 1), (1, 1), (0, 0))


class _Global:
    """Marker: a value that depends on the whole input (after global pooling, flatten, linear)."""


_GLOBAL = _Global()

# Functions that act on each position on its own (or only across channels): the output's window
# is the union of the inputs' windows.
_POINTWISE_NAMES = {
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "elu", "elu_", "selu", "celu", "gelu",
    "silu", "mish", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardsigmoid", "hardtanh",
    "hardtanh_", "softplus", "threshold", "threshold_", "batch_norm", "instance_norm", "group_norm",
    "local_response_norm", "dropout", "dropout2d", "alpha_dropout", "feature_alpha_dropout", "add", "add_",
    "__add__", "__iadd__", "__radd__", "sub", "sub_", "__sub__", "__rsub__", "mul", "mul_", "__mul__",
    "__imul__", "__rmul__", "div", "div_", "__truediv__", "clamp", "clamp_", "clip", "contiguous", "clone",
    "to", "float", "half", "bfloat16", "type", "detach", "exp", "abs", "neg", "pow", "__pow__", "sqrt",
    "rsqrt", "softmax", "log_softmax", "cat", "stack", "chunk", "split", "__getitem__", "where",
    "channel_shuffle", "native_channel_shuffle", "permute", "transpose", "view", "reshape", "flatten",
    "mean", "sum", "amax", "amin", "max", "min",
}
_GLOBAL_NAMES = {"linear", "adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices",
                 "matmul", "__matmul__", "mm", "bmm", "addmm"}
_SHAPE_NAMES = {"permute", "transpose", "view", "reshape", "flatten", "mean", "sum", "amax", "amin", "max",
                "min", "chunk", "split", "__getitem__", "stack", "squeeze", "unsqueeze"}


def _union(values: list) -> Any:
    """The window of a value that combines several (``+``, ``*``, ``cat``): their union."""
    if not values:
        return None
    if any(isinstance(v, _Global) for v in values):
        return _GLOBAL
    if len({v.stride for v in values}) > 1:
        raise ValueError(f"branches with different strides {[v.stride for v in values]} are joined: "
                         "their units do not line up, so one window cannot describe them")
    start = tuple(min(v.start[a] for v in values) for a in range(2))
    end = tuple(max(v.start[a] + v.size[a] for v in values) for a in range(2))
    return ReceptiveField(tuple(end[a] - start[a] for a in range(2)), values[0].stride, start)  # type: ignore[arg-type]


def _window(rf: ReceptiveField, kernel: Any, stride: Any, padding: Any, dilation: Any = 1) -> ReceptiveField:
    """The window after one sliding-window layer (convolution or pooling) with kernel ``k``,
    stride ``s``, padding ``p``, dilation ``d``: ``size + (k - 1) d stride``, ``stride s``,
    ``start - p stride``. (``ceil_mode`` only adds units at the far end: no window moves.)"""
    k = _pair(kernel)
    s = _pair(stride) if stride not in (None, [], ()) else k
    d = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            p = tuple((d[a] * (k[a] - 1)) // 2 for a in range(2))
        else:
            raise ValueError(f"unknown padding {padding!r}")
    else:
        p = _pair(padding)
    return ReceptiveField(
        size=tuple(rf.size[a] + (k[a] - 1) * d[a] * rf.stride[a] for a in range(2)),  # type: ignore[arg-type]
        stride=tuple(rf.stride[a] * s[a] for a in range(2)),  # type: ignore[arg-type]
        start=tuple(rf.start[a] - p[a] * rf.stride[a] for a in range(2)),  # type: ignore[arg-type]
    )


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1])) if len(v) else (0, 0)
    return (int(v), int(v))


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


class _RFTracker:
    """Runs a forward pass and attaches a window to every feature map it computes.

    A :class:`torch.overrides.TorchFunctionMode` sees every torch function the model calls
    (``F.conv2d``, ``F.max_pool2d``, ``+``, slicing, ``F.pad`` ...), whatever Python control
    flow surrounds it, and computes the output's window from the inputs'.
    """

    def __init__(self) -> None:
        self.rf: dict[int, tuple[torch.Tensor, Any]] = {}  # id -> (tensor kept alive, window)

    def get(self, t: Any) -> Any:
        if isinstance(t, torch.Tensor):
            hit = self.rf.get(id(t))
            if hit is not None and hit[0] is t:
                return hit[1]
        return None

    def set(self, t: Any, rf: Any) -> None:
        if isinstance(t, torch.Tensor) and rf is not None:
            self.rf[id(t)] = (t, rf)
        elif isinstance(t, (tuple, list)):
            for u in t:
                self.set(u, rf)

    def inputs(self, args: tuple, kwargs: dict) -> list:
        out = []

        def visit(a):
            if isinstance(a, torch.Tensor):
                r = self.get(a)
                if r is not None:
                    out.append(r)
            elif isinstance(a, (tuple, list)):
                for b in a:
                    visit(b)

        visit(args)
        visit(tuple(kwargs.values()))
        return out

    def propagate(self, func: Any, args: tuple, kwargs: dict, out: Any) -> Any:
        ins = self.inputs(args, kwargs)
        if not ins:
            return None
        name = getattr(func, "__name__", str(func))
        first = args[0] if args else None
        if any(isinstance(r, _Global) for r in ins):
            return _GLOBAL
        rf_in = _union(ins)
        if name == "conv2d":
            w = _arg(args, kwargs, 1, "weight")
            return _window(rf_in, tuple(w.shape[-2:]), _arg(args, kwargs, 3, "stride", 1),
                           _arg(args, kwargs, 4, "padding", 0), _arg(args, kwargs, 5, "dilation", 1))
        if name in ("max_pool2d", "max_pool2d_with_indices", "_max_pool2d", "avg_pool2d", "lp_pool2d"):
            k = _arg(args, kwargs, 1, "kernel_size")
            is_max = "max" in name
            return _window(rf_in, k, _arg(args, kwargs, 2, "stride", None), _arg(args, kwargs, 3, "padding", 0),
                           _arg(args, kwargs, 4, "dilation", 1) if is_max else 1)
        if name in _GLOBAL_NAMES:
            if name.startswith("adaptive") and _pair(_arg(args, kwargs, 1, "output_size")) == tuple(first.shape[-2:]):
                return rf_in  # an adaptive pooling that keeps the size does nothing
            return _GLOBAL
        if name == "pad":
            pad = list(_arg(args, kwargs, 1, "pad"))
            left, top = (pad + [0, 0, 0, 0])[0], (pad + [0, 0, 0, 0])[2]
            return ReceptiveField(rf_in.size, rf_in.stride,
                                  (rf_in.start[0] - top * rf_in.stride[0], rf_in.start[1] - left * rf_in.stride[1]))
        if name == "__getitem__" and isinstance(first, torch.Tensor) and first.ndim >= 2:
            return self._slice(rf_in, first, args[1])
        if name in _POINTWISE_NAMES or name in _SHAPE_NAMES:
            return self._spatial_check(name, first, out, rf_in)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if all(isinstance(o, torch.Tensor) and o.ndim >= 2 and isinstance(first, torch.Tensor) and first.ndim >= 2
               and o.shape[-2:] == first.shape[-2:] for o in outs):
            return rf_in  # an unknown function that keeps the spatial size: taken as pointwise
        if not any(isinstance(o, torch.Tensor) and o.is_floating_point() for o in outs):
            return None  # shapes, indices, booleans
        raise ValueError(f"cannot tell the receptive field through {name}: it is not a convolution, a "
                         "pooling or a pointwise operation")

    @staticmethod
    def _spatial_check(name: str, first: Any, out: Any, rf_in: Any) -> Any:
        """Pointwise and shape functions keep the window only while the last two axes stay the
        spatial axes of the feature map."""
        if name in _SHAPE_NAMES and isinstance(first, torch.Tensor):
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for o in outs:
                if not isinstance(o, torch.Tensor) or o.ndim < 2 or first.ndim < 2 or o.shape[-2:] != first.shape[-2:]:
                    return _GLOBAL
        return rf_in

    @staticmethod
    def _slice(rf: ReceptiveField, t: torch.Tensor, idx: Any) -> Any:
        """``x[..., a::s, b::s]`` takes every ``s``-th unit from ``a``: a 1x1 window, stride ``s``."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis for i in idx):
            e = idx.index(Ellipsis)
            idx = idx[:e] + (slice(None),) * (t.ndim - len(idx) + 1) + idx[e + 1 :]
        idx = idx + (slice(None),) * (t.ndim - len(idx))
        if len(idx) != t.ndim or not all(isinstance(i, slice) for i in idx[-2:]):
            return _GLOBAL
        start, step = [], []
        for a, sl in enumerate(idx[-2:]):
            b, _, s = sl.indices(t.shape[t.ndim - 2 + a])
            start.append(b)
            step.append(s)
        return ReceptiveField(rf.size, (rf.stride[0] * step[0], rf.stride[1] * step[1]),
                              (rf.start[0] + start[0] * rf.stride[0], rf.start[1] + start[1] * rf.stride[1]))


def layer_name(model: nn.Module, layer: str | nn.Module) -> str:
    """The dotted name of ``layer`` in ``model`` (``layer`` is a submodule or its name); a clear
    ``ValueError`` listing the model's layers when there is no such layer."""
    if isinstance(layer, str):
        try:
            model.get_submodule(layer)
        except AttributeError as e:
            names = [n for n, _ in model.named_modules() if n]
            raise ValueError(f"model has no layer {layer!r}; its layers are: {', '.join(names[:40])}"
                             + (" ..." if len(names) > 40 else "")) from e
        return layer
    if isinstance(layer, nn.Module):
        for n, m in model.named_modules():
            if m is layer:
                return n
        raise ValueError("layer is not a submodule of model: pass model's own module or its dotted name")
    raise TypeError(f"layer must be a module or its dotted name (str); got {type(layer).__name__}")


class StopForward(Exception):
    """Raised by a forward hook to skip the layers after the one it read (caught by the caller)."""


def _default_input_size(model: nn.Module) -> tuple[int, int, int, int]:
    """``(1, C, H, W)``: the size a registered model was built for (its ``default_input_size``,
    set by :func:`convnets.models.register_model`); for any other module, ``C`` is its first
    convolution's input channels and ``H = W = 64``."""
    registered = getattr(model, "default_input_size", None)
    if registered is not None:
        return (1, *registered)
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return (1, conv.in_channels if conv is not None else 1, 64, 64)


def receptive_field(model: nn.Module | Sequence[nn.Module], layer: str | nn.Module | None = None,
                    input_size: Sequence[int] | None = None) -> ReceptiveField:
    """The receptive field of one unit of ``layer``'s output in ``model``'s input.

    ``model`` is any module (or a list of layers applied in turn); ``layer`` a submodule or its
    dotted name (``None``: the model's output). The window is computed from the layers, not
    measured: the model runs once on zeros of ``input_size`` (default: the size a registered model
    was built for, its ``default_input_size``; for other modules ``(1, C, 64, 64)``, C the first
    convolution's input channels: give the real size if the model needs one) while every
    torch operation it calls passes the window on. A convolution or pooling with kernel ``k``,
    stride ``s``, padding ``p`` and dilation ``d`` maps ``(size, stride, start)`` to
    ``(size + (k - 1) d stride, stride s, start - p stride)``; pointwise operations keep it;
    strided slicing ``x[:, :, ::s, ::s]`` and ``F.pad`` shift and stride it; where branches join
    (a residual ``+``, a ``cat``) the window is their union.

    Raises ``ValueError`` for a layer after global pooling, flatten or a linear layer (its units
    see the whole image) and for operations it cannot follow.

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    >>> receptive_field(net)
    ReceptiveField(size=(8, 8), stride=(2, 2), start=(-1, -1))
    """
    from torch.overrides import TorchFunctionMode

    if isinstance(model, (list, tuple)):
        model = nn.Sequential(*model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a list of layers; got {type(model).__name__}")
    name = None if layer is None else layer_name(model, layer)
    size = tuple(int(s) for s in (input_size or _default_input_size(model)))
    if len(size) == 3:
        size = (1, *size)
    if len(size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W) or (C, H, W); got {input_size}")
    tracker = _RFTracker()
    found: dict[str, Any] = {}

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            tracker.set(out, tracker.propagate(func, args, kwargs, out))
            return out

    def hook(_m, _inp, out):
        found["rf"] = tracker.get(out if isinstance(out, torch.Tensor) else out[0])
        raise StopForward

    p = next(iter(model.parameters()), None)
    x = torch.zeros(size, device=model_device(model),
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    tracker.set(x, _IDENTITY_RF)
    handle = model.get_submodule(name).register_forward_hook(hook) if name else None
    try:
        with eval_mode(model), torch.no_grad(), _Mode():
            out = model(x)
        found["rf"] = tracker.get(out if isinstance(out, torch.Tensor) else out[0])
    except StopForward:
        pass
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - a model that does not run on this input size
        raise ValueError(f"{type(model).__name__} did not run on an input of size {size} ({e}); "
                         "pass its input size as input_size=(1, C, H, W)") from e
    finally:
        if handle is not None:
            handle.remove()
    rf = found.get("rf")
    if isinstance(rf, _Global):
        raise ValueError(f"units of {name or 'the output'!r} see the whole input (after global pooling, "
                         "flatten or a linear layer): pick a convolutional layer before them")
    if not isinstance(rf, ReceptiveField):
        raise ValueError(f"{name or 'the model'!r} does not output a feature map computed from the input")
    return rf
