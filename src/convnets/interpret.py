"""What a convolutional network has learned: filters, top-activating patches, class models, saliency.

Explained in the chapter "What convolutional networks learn" (``book/08-interpretation.md``),
which follows the lecture's slides «Интерпретация моделей», «Что находят свёрточные сети?»,
«Слой 1» … «Слой 5» and «Максимизация вероятности класса».

- :func:`first_conv`, :func:`filter_grid`: the first layer's filters as one image.
- :func:`receptive_field`: the input window that one unit of a layer sees, computed from the
  layers themselves (kernel, stride, padding, dilation of convolutions and poolings; the union of
  the branches where a residual ``+`` or a ``cat`` joins them).
- :func:`top_activating_patches`: for each channel of a layer, the ``k`` input patches with the
  strongest response, cropped to the receptive field (Zeiler and Fergus, 2013).
- :func:`class_model`: gradient ascent on the input for the class score
  ``S_c(x) - lambda * ||x||^2`` (Simonyan, Vedaldi and Zisserman, 2013), with the optional blur,
  jitter and clipping regularisers of later work (Yosinski et al., 2015).
- :func:`saliency`: ``max_channels |dS_c / dx|`` (Simonyan et al., 2013).

Everything runs on the model's device and is seeded; nothing downloads anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "first_conv",
    "filter_grid",
    "image_grid",
    "ReceptiveField",
    "receptive_field",
    "Patches",
    "top_activating_patches",
    "ClassModel",
    "class_model",
    "gaussian_blur",
    "saliency",
    "plot_grid",
]


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------

def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first :class:`~torch.nn.Conv2d` of ``model`` in registration order (its layer 1)."""
    if isinstance(model, nn.Conv2d):
        return model
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d: pass a convolutional network")


def _normalize01(t: torch.Tensor, per_item: bool) -> torch.Tensor:
    """Scale to [0, 1]: per item (dim 0) or over the whole tensor."""
    if per_item:
        flat = t.reshape(len(t), -1)
        lo = flat.min(1).values.view(-1, *[1] * (t.ndim - 1))
        hi = flat.max(1).values.view(-1, *[1] * (t.ndim - 1))
    else:
        lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo).clamp_min(1e-12)


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile images ``(N, C, h, w)`` into one image ``(C, H, W)``, ``nrow`` images per row
    (default: about a square), separated by ``pad`` pixels of ``pad_value``."""
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, h, w); got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol_rows = math.ceil(n / nrow)
    out = torch.full((c, ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), float(pad_value),
                     dtype=images.dtype, device=images.device)
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        out[:, top : top + h, left : left + w] = images[i]
    return out


def filter_grid(weight: torch.Tensor | nn.Module, nrow: int | None = None, pad: int = 1,
                normalize: str = "each") -> torch.Tensor:
    """The filters of a convolution as one image ``(C, H, W)`` with values in ``[0, 1]``.

    ``weight`` is a conv weight ``(C_out, C_in, k, k)`` or a model (its :func:`first_conv` is
    used). Filters with 3 input channels are shown in colour, others one input channel each
    (``C_out * C_in`` tiles, gray). ``normalize="each"`` stretches every filter to [0, 1] on its
    own (shapes show best); ``"all"`` uses one scale (relative strengths show).
    """
    if isinstance(weight, nn.Module):
        weight = first_conv(weight).weight
    w = weight.detach().float().cpu()
    if w.ndim != 4:
        raise ValueError(f"weight must have shape (C_out, C_in, k, k); got {tuple(w.shape)}")
    if normalize not in ("each", "all"):
        raise ValueError(f"normalize must be 'each' or 'all'; got {normalize!r}")
    if w.shape[1] != 3:
        w = w.reshape(-1, 1, *w.shape[2:])
    w = _normalize01(w, per_item=normalize == "each")
    return image_grid(w, nrow=nrow, pad=pad)


# --------------------------------------------------------------------------------------------
# Receptive field
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


def _layer_name(model: nn.Module, layer: str | nn.Module) -> str:
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


class _StopForward(Exception):
    """Raised by a hook to skip the layers after the one we read."""


def _default_input_size(model: nn.Module) -> tuple[int, int, int, int]:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    side = getattr(model, "image_size", 64)  # models built for one size say so (LeNet5)
    side = side if isinstance(side, int) and side > 0 else 64
    return (1, conv.in_channels if conv is not None else 1, side, side)


def receptive_field(model: nn.Module | Sequence[nn.Module], layer: str | nn.Module | None = None,
                    input_size: Sequence[int] | None = None) -> ReceptiveField:
    """The receptive field of one unit of ``layer``'s output in ``model``'s input.

    ``model`` is any module (or a list of layers applied in turn); ``layer`` a submodule or its
    dotted name (``None``: the model's output). The window is computed from the layers, not
    measured: the model runs once on zeros of ``input_size`` (default ``(1, C, S, S)``, C the
    first convolution's input channels, S the model's ``image_size`` attribute or 64; give the
    real size if the model needs one) while every
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
    name = None if layer is None else _layer_name(model, layer)
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
        raise _StopForward

    p = next(iter(model.parameters()), None)
    x = torch.zeros(size, device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    tracker.set(x, _IDENTITY_RF)
    handle = model.get_submodule(name).register_forward_hook(hook) if name else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Mode():
            out = model(x)
        found["rf"] = tracker.get(out if isinstance(out, torch.Tensor) else out[0])
    except _StopForward:
        pass
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - a model that does not run on this input size
        raise ValueError(f"{type(model).__name__} did not run on an input of size {size} ({e}); "
                         "pass its input size as input_size=(1, C, H, W)") from e
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    rf = found.get("rf")
    if isinstance(rf, _Global):
        raise ValueError(f"units of {name or 'the output'!r} see the whole input (after global pooling, "
                         "flatten or a linear layer): pick a convolutional layer before them")
    if not isinstance(rf, ReceptiveField):
        raise ValueError(f"{name or 'the model'!r} does not output a feature map computed from the input")
    return rf


# --------------------------------------------------------------------------------------------
# Top-activating patches
# --------------------------------------------------------------------------------------------

@dataclass
class Patches:
    """The ``k`` strongest responses of each channel of a layer, with their input patches.

    ``values (C, k)``: each channel's responses, strongest first (the maximum over positions
    of the image); ``indices (C, k)``: the images' positions in the data (int64);
    ``positions (C, k, 2)``: ``(row, col)`` of the unit in the feature map; ``crops
    (C, k, C_in, h, w)``: the input patches under the units' receptive field (zero outside the
    image); ``channels``: which channels of the layer the rows are; ``rf``: the receptive field.
    """

    values: torch.Tensor
    indices: torch.Tensor
    positions: torch.Tensor
    crops: torch.Tensor
    channels: list[int]
    rf: ReceptiveField
    layer: str = ""

    def grid(self, channels: Sequence[int] | None = None, pad: int = 1) -> torch.Tensor:
        """One image ``(C_in, H, W)``: a row of ``k`` patches per channel (rows = positions in
        ``self.channels`` of ``channels``, default all), each patch scaled to [0, 1]."""
        rows = range(len(self.channels)) if channels is None else [self.channels.index(c) for c in channels]
        crops = torch.cat([self.crops[r] for r in rows])
        return image_grid(_normalize01(crops.float(), per_item=True), nrow=self.crops.shape[1], pad=pad)


def _iter_images(data: torch.Tensor | Iterable, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(data.shape)}")
        for i in range(0, len(data), batch_size):
            yield data[i : i + batch_size]
        return
    for batch in data:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _crop(X: torch.Tensor, rf: ReceptiveField, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Crops ``(M, C, h, w)`` of images ``X (M, C, H, W)`` under units ``(rows, cols)``, zero-padded."""
    ph, pw = rf.size
    Xp = F.pad(X, (pw, pw, ph, ph))  # a window may reach up to its size outside the image
    top = rows * rf.stride[0] + rf.start[0] + ph
    left = cols * rf.stride[1] + rf.start[1] + pw
    out = torch.empty(len(X), X.shape[1], ph, pw, dtype=X.dtype, device=X.device)
    for m in range(len(X)):
        t, l = int(top[m]), int(left[m])
        out[m] = Xp[m, :, t : t + ph, l : l + pw]
    return out


@torch.no_grad()
def top_activating_patches(
    model: nn.Module,
    layer: str | nn.Module,
    data: torch.Tensor | Iterable,
    k: int = 9,
    channels: Sequence[int] | None = None,
    batch_size: int = 500,
    device: str | torch.device | None = None,
) -> Patches:
    """For each channel of ``layer``, the ``k`` images of ``data`` with the strongest response,
    and the input patch under the strongest unit (Zeiler and Fergus, 2013).

    An image's response for a channel is the maximum of that channel's feature map over the
    positions; the ``k`` images with the largest responses are kept (each image once per
    channel; among equal responses the earlier image), and the patch is cut around the unit that gave the maximum, to the unit's
    :func:`receptive_field`. ``data`` is images ``(N, C, H, W)`` or a loader of ``(X, y)``
    batches (in a fixed order: ``indices`` count images in that order). ``channels`` limits the
    search to some channels. The model runs in eval mode (restored after) on its own device.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    name = _layer_name(model, layer)
    module = model.get_submodule(name)
    rf: ReceptiveField | None = None
    dev = torch.device(device) if device is not None else next(iter(model.parameters()), torch.empty(0)).device
    chans = None if channels is None else torch.as_tensor(list(channels), dtype=torch.long)
    best_v = best_i = best_p = best_c = None
    seen = 0
    grabbed: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        # Read the output here: a later in-place ReLU would change it, and nothing after it is needed.
        grabbed["a"] = out.detach()
        raise _StopForward

    was_training = model.training
    model.eval()
    handle = module.register_forward_hook(hook)
    try:
        for X in _iter_images(data, batch_size):
            X = X.to(dev)
            if rf is None:
                handle.remove()  # the receptive field's own forward pass must not stop here
                rf = receptive_field(model, name, input_size=(1, *X.shape[1:]))
                model.eval()
                handle = module.register_forward_hook(hook)
            try:
                model(X)
            except _StopForward:
                pass
            a = grabbed.pop("a", None)
            if a is None or a.ndim != 4:
                raise ValueError(f"layer {name!r} must output a feature map (N, C, H, W)")
            if chans is not None:
                if int(chans.max()) >= a.shape[1] or int(chans.min()) < 0:
                    raise ValueError(f"channels must lie in 0..{a.shape[1] - 1}; got {channels}")
                a = a[:, chans.to(a.device)]
            B, C, H, W = a.shape
            flat = a.reshape(B, C, H * W).float()
            v, where = flat.max(2)  # (B, C): each image's strongest unit per channel
            kb = min(k, B)
            # a stable sort: among equal responses the earlier image wins, whatever the batch size
            bv, bb = v.sort(dim=0, descending=True, stable=True)
            bv, bb = bv[:kb], bb[:kb]  # (kb, C): the batch's best images per channel
            pos = where.gather(0, bb)  # (kb, C)
            rows, cols = pos // W, pos % W
            imgs = X[bb.reshape(-1)]
            crops = _crop(imgs, rf, rows.reshape(-1), cols.reshape(-1)).reshape(kb, C, *imgs.shape[1:2], *rf.size)
            cand = (bv, bb + seen, torch.stack([rows, cols], -1), crops)
            if best_v is None:
                best_v, best_i, best_p, best_c = cand
            else:
                best_v = torch.cat([best_v, cand[0]])
                best_i = torch.cat([best_i, cand[1]])
                best_p = torch.cat([best_p, cand[2]])
                best_c = torch.cat([best_c, cand[3]])
            kk = min(k, len(best_v))
            best_v, order = best_v.sort(dim=0, descending=True, stable=True)
            best_v, order = best_v[:kk], order[:kk]
            best_i = best_i.gather(0, order)
            best_p = best_p.gather(0, order[..., None].expand(-1, -1, 2))
            best_c = best_c[order, torch.arange(C, device=order.device)[None, :].expand_as(order)]
            seen += B
    finally:
        handle.remove()
        model.train(was_training)
    if best_v is None:
        raise ValueError("data gave no images")
    if seen < k:
        raise ValueError(f"need at least k={k} images; got {seen}")
    ch = list(range(best_v.shape[1])) if chans is None else [int(c) for c in chans]
    return Patches(best_v.T.cpu(), best_i.T.cpu(), best_p.transpose(0, 1).cpu(),
                   best_c.transpose(0, 1).cpu(), ch, rf, name)


# --------------------------------------------------------------------------------------------
# Class-model visualisation and saliency
# --------------------------------------------------------------------------------------------

@dataclass
class ClassModel:
    """The result of :func:`class_model`.

    ``image``: the optimised input, ``(C, H, W)`` for one target or ``(N, C, H, W)`` for a list
    of ``N`` targets (CPU, float32). ``scores``: the target's score ``S_c`` before each step and
    after the last (``steps + 1`` values; for a list of targets, one list of ``N`` values per
    moment); ``objective`` and ``norms`` (``||x||_2``): the same, at the same moments;
    ``logits``: every class's score for the final image(s), ``(K,)`` or ``(N, K)``.
    """

    image: torch.Tensor
    scores: list
    objective: list
    norms: list
    logits: torch.Tensor
    settings: dict = field(default_factory=dict)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur images ``(N, C, H, W)`` with a separable Gaussian of standard deviation ``sigma``
    pixels (reflect padding); ``sigma <= 0`` returns ``x``."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    C = x.shape[1]
    r_h, r_w = min(r, x.shape[2] - 1), min(r, x.shape[3] - 1)
    xp = F.pad(x, (r_w, r_w, r_h, r_h), mode="reflect")
    gh = g[r - r_h : r + r_h + 1]
    gw = g[r - r_w : r + r_w + 1]
    y = F.conv2d(xp, gh.view(1, 1, -1, 1).expand(C, 1, -1, 1).contiguous(), groups=C)
    return F.conv2d(y, gw.view(1, 1, 1, -1).expand(C, 1, 1, -1).contiguous(), groups=C)


def _targets(target: Any) -> tuple[list[int], bool]:
    """``(class indices, single)`` from an int, a sequence of ints or an int tensor."""
    if isinstance(target, torch.Tensor):
        target = target.tolist()
    single = not isinstance(target, (list, tuple))
    ts = [target] if single else list(target)
    if not ts or any(not isinstance(t, int) or isinstance(t, bool) or t < 0 for t in ts):
        raise ValueError(f"target must be a class index (int >= 0) or a list of them; got {target!r}")
    return ts, single


def class_model(
    model: nn.Module,
    target: int | Sequence[int] | torch.Tensor,
    image_shape: Sequence[int] = (1, 28, 28),
    steps: int = 200,
    lr: float = 0.1,
    l2: float = 0.0,
    objective: str = "score",
    init: str | torch.Tensor = "zeros",
    blur_sigma: float = 0.0,
    blur_every: int = 4,
    jitter: int = 0,
    clip: tuple[float, float] | None = None,
    clip_norm_pct: float = 0.0,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> ClassModel:
    """The input that maximises class ``target``'s score: gradient ascent on the image.

    Maximises ``S_c(x) - l2 * ||x||_2^2`` (``objective="score"``, the unnormalised score,
    Simonyan et al. 2013) or ``log softmax_c(x) - l2 * ||x||_2^2`` (``"log_softmax"``) by plain
    gradient ascent, ``x <- x + lr * grad``, from ``init``: ``"zeros"`` (Simonyan's start),
    ``"noise"`` (seeded ``N(0, 0.01^2)``, the slide's start) or a tensor of ``image_shape``.
    A list of targets optimises one image per target in one batch (each image's objective
    depends on it alone: the model runs in eval mode).

    Optional regularisers (Yosinski et al. 2015 and later work):

    - ``jitter``: shift the image by up to ``jitter`` pixels (seeded, random each step)
      before the forward pass;
    - ``blur_sigma`` / ``blur_every``: Gaussian-blur the image every ``blur_every`` steps;
    - ``clip``: clamp the pixels to ``(low, high)`` after each step;
    - ``clip_norm_pct``: zero the pixels whose norm over channels is in the lowest
      ``clip_norm_pct`` percent of the image, after each step.

    ``model`` maps ``(N, *image_shape)`` to logits ``(N, K)``; it runs in eval mode (restored
    after) on its device. Returns a :class:`ClassModel`.
    """
    if objective not in ("score", "log_softmax"):
        raise ValueError(f"objective must be 'score' or 'log_softmax'; got {objective!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    if l2 < 0:
        raise ValueError(f"l2 must be non-negative; got {l2}")
    targets, single = _targets(target)
    dev = torch.device(device) if device is not None else next(iter(model.parameters()), torch.empty(0)).device
    g = torch.Generator(device="cpu").manual_seed(seed)
    shape = tuple(int(s) for s in image_shape)
    n = len(targets)
    if isinstance(init, torch.Tensor):
        if tuple(init.shape) not in (shape, (n, *shape)):
            raise ValueError(f"init has shape {tuple(init.shape)}; expected image_shape {shape}")
        x = init.detach().float().clone().expand(n, *shape).clone()
    elif init == "zeros":
        x = torch.zeros(n, *shape)
    elif init == "noise":
        x = 0.01 * torch.randn(n, *shape, generator=g)
    else:
        raise ValueError(f"init must be 'zeros', 'noise' or a tensor; got {init!r}")
    x = x.to(dev)
    t_idx = torch.tensor(targets, device=dev)
    was_training = model.training
    model.eval()
    scores, objs, norms = [], [], []
    logits = None
    try:
        for step in range(steps + 1):
            x_var = x.detach().requires_grad_(True)
            img = x_var
            if jitter and step < steps:
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
                img = torch.roll(x_var, shifts=(dy, dx), dims=(2, 3))
            logits = model(img)
            if isinstance(logits, (tuple, list)):
                logits = logits[0]
            if int(t_idx.max()) >= logits.shape[1]:
                raise ValueError(f"target {targets} out of range for a model with {logits.shape[1]} classes")
            s = logits.gather(1, t_idx[:, None])[:, 0]
            base = s if objective == "score" else F.log_softmax(logits.float(), 1).gather(1, t_idx[:, None])[:, 0]
            obj = base - l2 * (x_var**2).flatten(1).sum(1)
            scores.append(s.detach().cpu().tolist())
            objs.append(obj.detach().cpu().tolist())
            norms.append(x_var.detach().flatten(1).norm(dim=1).cpu().tolist())
            if step == steps:
                break
            (grad,) = torch.autograd.grad(obj.sum(), x_var)
            with torch.no_grad():
                x = x_var.detach() + lr * grad
                if blur_sigma > 0 and blur_every > 0 and (step + 1) % blur_every == 0:
                    x = gaussian_blur(x, blur_sigma)
                if clip is not None:
                    x = x.clamp(clip[0], clip[1])
                if clip_norm_pct > 0:
                    pix = x.norm(dim=1, keepdim=True)  # (N, 1, H, W)
                    thr = torch.quantile(pix.flatten(1).float(), clip_norm_pct / 100, dim=1)
                    x = torch.where(pix < thr.view(-1, 1, 1, 1), torch.zeros_like(x), x)
    finally:
        model.train(was_training)
    settings = dict(target=targets[0] if single else targets, steps=steps, lr=lr, l2=l2, objective=objective,
                    blur_sigma=blur_sigma, blur_every=blur_every, jitter=jitter, clip=clip,
                    clip_norm_pct=clip_norm_pct, seed=seed, init=init if isinstance(init, str) else "tensor")
    out_logits = logits.detach().float().cpu()
    if single:
        return ClassModel(x[0].detach().float().cpu(), [v[0] for v in scores], [v[0] for v in objs],
                          [v[0] for v in norms], out_logits[0], settings)
    return ClassModel(x.detach().float().cpu(), scores, objs, norms, out_logits, settings)


def saliency(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor | None = None) -> torch.Tensor:
    """Image-specific class saliency ``max_channels |dS_c / dx|`` (Simonyan et al. 2013).

    ``x`` is ``(N, C, H, W)`` or one image ``(C, H, W)``; ``target`` a class index, one per
    image ``(N,)``, or ``None`` for each image's predicted class. Returns ``(N, H, W)`` (or
    ``(H, W)`` for one image), float32, on ``x``'s device. The model runs in eval mode.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        raise ValueError(f"x must be images (N, C, H, W) or one image (C, H, W); got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    single = x.ndim == 3
    X = (x[None] if single else x).detach().float().clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        logits = model(X)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        if target is None:
            t = logits.argmax(1)
        else:
            t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
            if t.numel() == 1:
                t = t.expand(len(X))
            if t.numel() != len(X):
                raise ValueError(f"target must be one class or one per image ({len(X)}); got {t.numel()}")
            if int(t.min()) < 0 or int(t.max()) >= logits.shape[1]:
                raise ValueError(f"target must lie in 0..{logits.shape[1] - 1}")
        (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), X)
    finally:
        model.train(was_training)
    s = grad.abs().amax(1)
    return s[0] if single else s


# --------------------------------------------------------------------------------------------
# Plotting
# --------------------------------------------------------------------------------------------

def plot_grid(images: torch.Tensor | Sequence[torch.Tensor], titles: Sequence[str] | None = None,
              nrow: int | None = None, size: float = 1.2, cmap: str = "gray", normalize: bool = True,
              suptitle: str | None = None, row_labels: Sequence[str] | None = None):
    """Show images ``(N, C, h, w)`` (C = 1 or 3) in a grid of axes; returns the figure.

    ``normalize`` stretches each image to [0, 1]; ``row_labels`` label the rows on the left."""
    import matplotlib.pyplot as plt

    imgs = torch.stack(list(images)) if not isinstance(images, torch.Tensor) else images
    imgs = imgs.detach().float().cpu()
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    n = len(imgs)
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    fig, axes = plt.subplots(rows, nrow, figsize=(size * nrow, size * rows + (0.3 if suptitle else 0)),
                             squeeze=False)
    if normalize:
        imgs = _normalize01(imgs, per_item=True)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if i >= n:
            continue
        im = imgs[i]
        if im.shape[0] == 3:
            ax.imshow(im.permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            ax.imshow(im[0].numpy(), cmap=cmap, vmin=0 if normalize else None, vmax=1 if normalize else None)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=8)
    if row_labels is not None:
        for r, lab in enumerate(row_labels[:rows]):
            axes[r, 0].set_ylabel(lab, fontsize=8, rotation=0, ha="right", va="center")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Activation maximisation of a channel or a layer; DeepDream on a photo
# --------------------------------------------------------------------------------------------

@dataclass
class ActivationMax:
    """The result of :func:`activation_maximization` (and :func:`deep_dream`).

    ``image``: the optimised input(s), ``(N, C, H, W)`` (CPU, float32), one per channel asked
    for (one for the whole layer); ``objective``: the objective of each image before each step
    and after the last (``steps + 1`` lists of ``N`` values); ``activation``: the objective's
    activation term alone (the channel's mean response, or the layer's mean squared response)
    at the same moments.
    """

    image: torch.Tensor
    objective: list
    activation: list
    settings: dict = field(default_factory=dict)


def _grab_layer(model: nn.Module, layer: str | nn.Module):
    module = model.get_submodule(layer) if isinstance(layer, str) else layer
    got: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        got["a"] = out
        return out.clone()  # the rest of the network may work in place on its copy

    return module, got, hook


def activation_maximization(
    model: nn.Module,
    layer: str | nn.Module,
    channel: int | Sequence[int] | None = None,
    image_shape: Sequence[int] = (1, 28, 28),
    steps: int = 200,
    lr: float = 0.05,
    l2: float = 0.0,
    init: str | torch.Tensor = "noise",
    normalize_grad: bool = True,
    jitter: int = 0,
    blur_sigma: float = 0.0,
    blur_every: int = 4,
    clip: tuple[float, float] | None = None,
    seed: int = 0,
) -> ActivationMax:
    """The input that excites a channel of ``layer`` (or the whole layer) most: gradient ascent
    on the image (Erhan et al. 2009; Yosinski et al. 2015; with ``channel=None``, the DeepDream
    objective of Mordvintsev et al. 2015).

    The activation term is the mean over positions of channel ``c`` of ``layer``'s output
    ``A (N, K, h, w)``, ``mean_ij A_c,ij(x)``, or, for ``channel=None``, half the mean square of the
    whole output, ``mean A(x)^2 / 2``, whose gradient is ``A`` itself: "amplify whatever the
    layer already sees". The objective subtracts ``l2 * ||x||_2^2``. A list of channels optimises
    one image per channel in one batch.

    Each step is ``x <- x + lr * g`` with ``g`` the objective's gradient, divided by its mean
    absolute value per image when ``normalize_grad`` (so ``lr`` is a step in pixel units whatever
    the layer's scale), then the optional regularisers: ``jitter`` (a random shift of up to that
    many pixels before the forward pass), ``blur_sigma`` every ``blur_every`` steps, ``clip`` to a
    value range. ``init``: ``"noise"`` (seeded, uniform in [0.4, 0.6]: a gray image with a little
    noise), ``"zeros"``, or a tensor ``(C, H, W)`` / ``(N, C, H, W)`` such as a photo. The model runs
    in eval mode (restored after) on its device; the returned image is on the CPU.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    if l2 < 0:
        raise ValueError(f"l2 must be non-negative; got {l2}")
    single_layer = channel is None
    chans = [] if single_layer else ([channel] if isinstance(channel, int) else [int(c) for c in channel])
    n = 1 if single_layer else len(chans)
    if not single_layer and (n == 0 or min(chans) < 0):
        raise ValueError(f"channel must be a channel index (int >= 0), a list of them, or None; got {channel!r}")
    dev = next(iter(model.parameters()), torch.empty(0)).device
    g = torch.Generator(device="cpu").manual_seed(seed)
    if isinstance(init, torch.Tensor):
        x = init.detach().float().clone()
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or len(x) not in (1, n):
            raise ValueError(f"init must be (C, H, W) or ({n}, C, H, W); got {tuple(init.shape)}")
        x = x.expand(n, *x.shape[1:]).clone()
    elif init == "noise":
        x = 0.4 + 0.2 * torch.rand(n, *(int(s) for s in image_shape), generator=g)
    elif init == "zeros":
        x = torch.zeros(n, *(int(s) for s in image_shape))
    else:
        raise ValueError(f"init must be 'noise', 'zeros' or a tensor; got {init!r}")
    x = x.to(dev)
    module, got, hook = _grab_layer(model, layer)
    was_training = model.training
    model.eval()
    handle = module.register_forward_hook(hook)
    objs, acts = [], []
    try:
        for step in range(steps + 1):
            x_var = x.detach().requires_grad_(True)
            img = x_var
            if jitter and step < steps:
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
                img = torch.roll(x_var, shifts=(dy, dx), dims=(2, 3))
            with torch.enable_grad():
                model(img)
                a = got.pop("a")
                if a.ndim != 4:
                    raise ValueError("the layer must output a feature map (N, K, h, w)")
                if single_layer:
                    act = 0.5 * a.pow(2).flatten(1).mean(1)
                else:
                    if max(chans) >= a.shape[1]:
                        raise ValueError(f"channel must lie in 0..{a.shape[1] - 1}; got {channel!r}")
                    idx = torch.tensor(chans, device=a.device)
                    act = a[torch.arange(n, device=a.device), idx].flatten(1).mean(1)
                obj = act - l2 * x_var.pow(2).flatten(1).sum(1)
            objs.append(obj.detach().cpu().tolist())
            acts.append(act.detach().cpu().tolist())
            if step == steps:
                break
            (grad,) = torch.autograd.grad(obj.sum(), x_var)
            with torch.no_grad():
                if normalize_grad:
                    grad = grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
                x = x_var.detach() + lr * grad
                if blur_sigma > 0 and blur_every > 0 and (step + 1) % blur_every == 0:
                    x = gaussian_blur(x, blur_sigma)
                if clip is not None:
                    x = x.clamp(clip[0], clip[1])
    finally:
        handle.remove()
        model.train(was_training)
    settings = dict(layer=layer if isinstance(layer, str) else type(layer).__name__, channel=channel,
                    steps=steps, lr=lr, l2=l2, normalize_grad=normalize_grad, jitter=jitter,
                    blur_sigma=blur_sigma, blur_every=blur_every, clip=clip, seed=seed,
                    init=init if isinstance(init, str) else "tensor")
    return ActivationMax(x.detach().float().cpu(), objs, acts, settings)


def deep_dream(
    model: nn.Module,
    layer: str | nn.Module,
    image: torch.Tensor,
    channel: int | None = None,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 20,
    lr: float = 0.02,
    jitter: int = 2,
    clip: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> ActivationMax:
    """DeepDream (Mordvintsev, Olah and Tyka, 2015): activation maximisation started from a photo
    ``image (C, H, W)``, over ``octaves`` scales from the smallest (the image shrunk by
    ``octave_scale`` per octave) to the original; at each scale the details added so far are
    enlarged onto the photo at that scale and ``steps`` ascent steps of
    :func:`activation_maximization` (normalised gradient, ``lr``, ``jitter``, ``clip``) add more.
    ``channel=None`` amplifies the whole layer. Returns an :class:`ActivationMax` whose ``image``
    is ``(1, C, H, W)`` and whose ``objective``/``activation`` concatenate the octaves' steps.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W); got {tuple(image.shape)}")
    if octaves < 1:
        raise ValueError(f"octaves must be at least 1; got {octaves}")
    base = image.detach().float()[None]
    H, W = base.shape[2:]
    sizes = [(max(8, round(H / octave_scale**o)), max(8, round(W / octave_scale**o))) for o in range(octaves)][::-1]
    detail = torch.zeros(1, base.shape[1], *sizes[0])
    objs, acts = [], []
    x = base
    for o, size in enumerate(sizes):
        b = F.interpolate(base, size=size, mode="bilinear", align_corners=False, antialias=True)
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        r = activation_maximization(model, layer, channel, steps=steps, lr=lr, init=b + detail,
                                    jitter=jitter, clip=clip, seed=seed + o)
        x = r.image
        detail = x - b
        objs += r.objective if o == 0 else r.objective[1:]
        acts += r.activation if o == 0 else r.activation[1:]
    settings = dict(layer=layer if isinstance(layer, str) else type(layer).__name__, channel=channel,
                    octaves=octaves, octave_scale=octave_scale, steps=steps, lr=lr, jitter=jitter,
                    clip=clip, seed=seed)
    return ActivationMax(x, objs, acts, settings)


__all__ += ["ActivationMax", "activation_maximization", "deep_dream"]
