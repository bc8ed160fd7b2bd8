"""Batch normalization and layer normalization, written from the lecture's formulas.

Explained in the chapter "Normalization" (``book/02-normalization.md``), slides «Batch
Normalization» and «Layer Normalization».

The modules are drop-in replacements for torch's: same constructor arguments, same behaviour in
train and eval mode, same parameter and buffer names, so a ``state_dict`` of either loads into
the other. Means and variances are computed here by hand (no call to torch's ``batch_norm`` /
``layer_norm`` functionals); autograd differentiates them. The classic hand-written backward
passes are :func:`batch_norm_backward` and :func:`layer_norm_backward`, and
:class:`BatchNormFunction` / :class:`LayerNormFunction` plug them into autograd.

Batch norm, for each channel ``c`` of a batch ``x`` of shape ``(N, C, *)``, averages over the
batch and every position (all axes but ``C``):

    mu_c = mean(x[:, c]),  var_c = mean((x[:, c] - mu_c)^2)          (biased)
    y[:, c] = gamma_c * (x[:, c] - mu_c) / sqrt(var_c + eps) + beta_c

In training it also updates ``running = (1 - momentum) * running + momentum * batch_stat`` with
the *unbiased* batch variance (``momentum=None``: a cumulative average), and in eval mode it
normalizes with those running statistics instead of the batch's.

Layer norm averages over the last ``len(normalized_shape)`` axes of each example on its own; it
behaves the same in train and eval mode and keeps no running statistics. Its ``gamma`` and
``beta`` have the shape ``normalized_shape`` (one per feature, as in Ba et al. 2016 and torch);
the lecture's slide makes them scalars: that variant is :class:`ScalarLayerNorm`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "ScalarLayerNorm",
    "batch_norm",
    "layer_norm",
    "batch_norm_backward",
    "layer_norm_backward",
    "BatchNormFunction",
    "LayerNormFunction",
    "norm_layer",
    "GhostBatchNorm2d",
    "fold_batchnorm",
    "batch_stat_accuracy",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _stats(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance of ``x`` over ``dims`` (kept as size-1 axes)."""
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
    return mean, var


def _channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-channel vector ``(C,)`` shaped ``(1, C, 1, ...)`` to broadcast against an ``ndim`` input."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalization of ``x (N, C, *)`` per channel, from the formulas.

    ``training=True``: normalize with the batch's mean and biased variance over every axis but
    ``C``, and (when ``running_mean``/``running_var`` are given) update them in place with
    ``momentum`` (the unbiased variance goes into ``running_var``). ``training=False``: normalize
    with ``running_mean`` and ``running_var``. Same contract as
    :func:`torch.nn.functional.batch_norm`. Returns a tensor shaped like ``x``.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input (N, C, *) with at least 2 dims; got shape {tuple(x.shape)}")
    dims = (0,) + tuple(range(2, x.ndim))
    xc = x.float() if x.dtype in _LOW_PRECISION else x
    if training:
        count = xc.numel() // xc.shape[1]
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}: "
                "batch norm needs a batch of at least 2 examples (or 2 positions) to estimate a variance"
            )
        mean, var = _stats(xc, dims)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                m = momentum
                unbiased = var.reshape(-1) * (count / (count - 1))
                running_mean.mul_(1 - m).add_(mean.reshape(-1).to(running_mean.dtype), alpha=m)
                running_var.mul_(1 - m).add_(unbiased.to(running_var.dtype), alpha=m)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode (training=False) needs running_mean and running_var")
        mean = _channel_view(running_mean.to(xc.dtype), x.ndim)
        var = _channel_view(running_var.to(xc.dtype), x.ndim)
    # gamma / sqrt(var + eps) is folded into one per-channel scale: one pass over x fewer.
    # (Folding the mean into a shift as well would save another, but x * s - mu * s cancels
    # badly when x is close to mu, and the gradients then drift from torch's by more than 1e-5.)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * _channel_view(weight.to(xc.dtype), x.ndim)
    y = (xc - mean) * scale
    if bias is not None:
        y = y + _channel_view(bias.to(xc.dtype), x.ndim)
    return y.to(x.dtype)


def _normalized_shape(normalized_shape: int | Sequence[int] | torch.Size) -> tuple[int, ...]:
    if isinstance(normalized_shape, str):
        raise TypeError(f"normalized_shape must be an int or a sequence of ints; got {normalized_shape!r}")
    if isinstance(normalized_shape, int):
        shape: tuple[int, ...] = (normalized_shape,)
    else:
        try:
            shape = tuple(int(s) for s in normalized_shape)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"normalized_shape must be an int or a sequence of ints; got {normalized_shape!r}"
            ) from e
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"normalized_shape must be non-empty with positive sizes; got {normalized_shape!r}")
    return shape


def layer_norm(
    x: torch.Tensor,
    normalized_shape: int | Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Layer normalization from the formulas: each example's last ``len(normalized_shape)`` axes
    are shifted to mean 0 and scaled to (biased) variance 1, then ``* weight + bias``.

    ``x`` has shape ``(*, *normalized_shape)``; ``weight`` and ``bias`` have shape
    ``normalized_shape`` (or are ``None``; a scalar tensor also broadcasts, as in the slide).
    Same contract as :func:`torch.nn.functional.layer_norm`.
    """
    shape = _normalized_shape(normalized_shape)
    k = len(shape)
    if tuple(x.shape[x.ndim - k:]) != shape or x.ndim < k:
        raise ValueError(
            f"layer_norm: the input's last {k} dims must equal normalized_shape {list(shape)}; "
            f"got input of shape {tuple(x.shape)}"
        )
    xc = x.float() if x.dtype in _LOW_PRECISION else x
    mean, var = _stats(xc, tuple(range(x.ndim - k, x.ndim)))
    y = (xc - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.to(xc.dtype)
    if bias is not None:
        y = y + bias.to(xc.dtype)
    return y.to(x.dtype)


# --------------------------------------------------------------------------- the backward pass


def batch_norm_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of training-mode batch norm, by hand: ``(grad_x, grad_weight, grad_bias)``.

    With ``m`` values per channel, ``x_hat = (x - mu) / sqrt(var + eps)`` and
    ``g = grad_out * gamma``::

        grad_x     = (m * g - sum(g) - x_hat * sum(g * x_hat)) / (m * sqrt(var + eps))
        grad_gamma = sum(grad_out * x_hat),   grad_beta = sum(grad_out)

    the sums running over every axis but ``C``. ``x`` and ``grad_out`` are ``(N, C, *)``;
    ``weight`` is ``(C,)`` or ``None`` (gamma = 1). The gradients of gamma and beta have shape ``(C,)``.
    """
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out {tuple(grad_out.shape)} and x {tuple(x.shape)} must have the same shape")
    dims = (0,) + tuple(range(2, x.ndim))
    m = x.numel() // x.shape[1]
    mean, var = _stats(x, dims)
    inv_std = torch.rsqrt(var + eps)
    x_hat = (x - mean) * inv_std
    g = grad_out if weight is None else grad_out * _channel_view(weight, x.ndim)
    sum_g = g.sum(dim=dims, keepdim=True)
    sum_gx = (g * x_hat).sum(dim=dims, keepdim=True)
    grad_x = (m * g - sum_g - x_hat * sum_gx) * (inv_std / m)
    grad_weight = (grad_out * x_hat).sum(dim=dims)
    grad_bias = grad_out.sum(dim=dims)
    return grad_x, grad_weight, grad_bias


def layer_norm_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    normalized_shape: int | Sequence[int],
    weight: torch.Tensor | None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of layer norm, by hand: ``(grad_x, grad_weight, grad_bias)``.

    The same formula as :func:`batch_norm_backward` with the roles of the axes swapped: the
    statistics (and the sums in ``grad_x``) run over the normalized axes of each example, while
    ``grad_weight`` and ``grad_bias`` (shape ``normalized_shape``) sum over the leading axes.
    """
    shape = _normalized_shape(normalized_shape)
    k = len(shape)
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out {tuple(grad_out.shape)} and x {tuple(x.shape)} must have the same shape")
    inner = tuple(range(x.ndim - k, x.ndim))
    outer = tuple(range(x.ndim - k))
    m = 1
    for s in shape:
        m *= s
    mean, var = _stats(x, inner)
    inv_std = torch.rsqrt(var + eps)
    x_hat = (x - mean) * inv_std
    g = grad_out if weight is None else grad_out * weight
    sum_g = g.sum(dim=inner, keepdim=True)
    sum_gx = (g * x_hat).sum(dim=inner, keepdim=True)
    grad_x = (m * g - sum_g - x_hat * sum_gx) * (inv_std / m)
    grad_weight = (grad_out * x_hat).sum(dim=outer) if outer else grad_out * x_hat
    grad_bias = grad_out.sum(dim=outer) if outer else grad_out.clone()
    return grad_x, grad_weight, grad_bias


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm whose backward is :func:`batch_norm_backward` (not autograd's).

    ``BatchNormFunction.apply(x, weight, bias, eps)`` with ``x (N, C, *)``, ``weight, bias (C,)``;
    no running statistics (use :func:`batch_norm` for those).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
        ctx.save_for_backward(x, weight)
        ctx.eps = eps
        return batch_norm(x, None, None, weight, bias, training=True, eps=eps)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        gx, gw, gb = batch_norm_backward(grad_out, x, weight, ctx.eps)
        return gx, gw, gb, None


class LayerNormFunction(torch.autograd.Function):
    """Layer norm whose backward is :func:`layer_norm_backward` (not autograd's).

    ``LayerNormFunction.apply(x, normalized_shape, weight, bias, eps)``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, normalized_shape, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
        ctx.save_for_backward(x, weight)
        ctx.normalized_shape, ctx.eps = _normalized_shape(normalized_shape), eps
        return layer_norm(x, normalized_shape, weight, bias, eps)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        gx, gw, gb = layer_norm_backward(grad_out, x, ctx.normalized_shape, weight, ctx.eps)
        return gx, None, gw, gb, None


# --------------------------------------------------------------------------- modules


class _BatchNorm(nn.Module):
    """Shared code of :class:`BatchNorm1d` and :class:`BatchNorm2d` (torch's ``_BatchNorm``)."""

    _version = 2  # torch's: a state_dict without num_batches_tracked (version < 2) still loads
    _expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"num_features must be a positive int (the number of channels C); got {num_features!r}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1] or be None (cumulative average); got {momentum!r}")
        if eps <= 0:
            raise ValueError(f"eps must be positive (it keeps the division finite); got {eps!r}")
        fk = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **fk))
            if bias:
                self.bias = nn.Parameter(torch.zeros(num_features, **fk))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **fk))
            self.register_buffer("running_var", torch.ones(num_features, **fk))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches counted."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Running statistics reset; gamma = 1, beta = 0."""
        self.reset_running_stats()
        if self.affine:
            with torch.no_grad():
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.ndim not in self._expected_dims:
            want = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(
                f"{type(self).__name__} expects a {want} input; got {x.ndim}D input of shape {tuple(x.shape)}"
                + (" (use BatchNorm2d for images (N, C, H, W))" if x.ndim == 4 else "")
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) got an input with {x.shape[1]} channels "
                f"(shape {tuple(x.shape)}); the channel axis is dim 1"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> the same shape."""
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else float(self.momentum)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average of every batch seen so far
                factor = 1.0 / float(self.num_batches_tracked)
        # batch statistics in training, and in eval when there are no running statistics
        use_batch = self.training or self.running_mean is None
        update = self.training and self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if update or not use_batch else None,
            self.running_var if update or not use_batch else None,
            self.weight,
            self.bias,
            training=use_batch,
            momentum=factor,
            eps=self.eps,
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        version = local_metadata.get("version", None)
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm for vectors ``(N, C)`` or sequences ``(N, C, L)``; drop-in for :class:`torch.nn.BatchNorm1d`.

    Statistics per feature ``C`` over ``N`` (and ``L``). See the module docstring for the formulas.
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm for images ``(N, C, H, W)``; drop-in for :class:`torch.nn.BatchNorm2d`.

    Statistics per channel ``C`` over ``N``, ``H`` and ``W``. See the module docstring for the formulas.
    """

    _expected_dims = (4,)


class LayerNorm(nn.Module):
    """Layer norm over the last dims ``normalized_shape``; drop-in for :class:`torch.nn.LayerNorm`.

    ``x (*, *normalized_shape)`` -> same shape. With ``elementwise_affine=True`` it learns
    ``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape``: one gamma and one beta
    per feature, as in Ba et al. (2016, Eq. 4) and torch. For a conv net, ``LayerNorm([C, H, W])``
    normalizes each image's whole feature map.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int] | torch.Size,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be positive (it keeps the division finite); got {eps!r}")
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        fk = {"device": device, "dtype": dtype}
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, **fk))
            if bias:
                self.bias = nn.Parameter(torch.zeros(self.normalized_shape, **fk))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """gamma = 1, beta = 0."""
        if self.elementwise_affine:
            with torch.no_grad():
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class ScalarLayerNorm(nn.Module):
    """Layer norm as the lecture's slide writes it: one scalar gamma and one scalar beta.

    ``z = gamma * (x - mu) / sqrt(var + eps) + beta`` with ``gamma, beta`` of shape ``()``,
    statistics over the last ``len(normalized_shape)`` dims. Two parameters per layer, whatever
    its width; :class:`LayerNorm` (torch's and the paper's) has ``2 * prod(normalized_shape)``.
    """

    def __init__(self, normalized_shape: int | Sequence[int] | torch.Size, eps: float = 1e-5,
                 device=None, dtype=None) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"eps must be positive (it keeps the division finite); got {eps!r}")
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones((), device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros((), device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, scalar gamma and beta"


class GhostBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics come from groups of ``virtual_batch`` images.

    In training, a batch ``(N, C, H, W)`` is cut into consecutive groups of ``virtual_batch``
    examples and each group is normalized with its own mean and variance (torch's batch norm on
    each group), as when a batch is spread over ``N / virtual_batch`` GPUs that each normalize
    their share (the setting of Wu & He's group-norm paper). The running statistics are updated
    from the first group only, once per batch, as the first GPU's copy of the layer would be. In
    eval mode it is :class:`torch.nn.BatchNorm2d`. With ``virtual_batch >= N`` it is plain batch
    norm. Lets one measure the effect of small normalization batches at a fixed optimisation
    batch (same steps, same learning rate).
    """

    def __init__(self, num_features: int, virtual_batch: int, **kwargs):
        super().__init__(num_features, **kwargs)
        if virtual_batch < 1:
            raise ValueError(f"virtual_batch must be at least 1; got {virtual_batch}")
        self.virtual_batch = int(virtual_batch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.virtual_batch
        if not self.training or x.shape[0] <= b:
            return super().forward(x)
        chunks = x.split(b)
        out = [super().forward(chunks[0])]  # updates the running statistics
        out += [nn.functional.batch_norm(c, None, None, self.weight, self.bias, True, 0.0, self.eps)
                for c in chunks[1:]]
        return torch.cat(out)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", virtual_batch={self.virtual_batch}"


def norm_layer(kind: str, channels: int, spatial: tuple[int, int] | None = None, impl: str = "convnets",
               groups: int = 4, virtual_batch: int | None = None) -> nn.Module:
    """A normalization layer for feature maps ``(N, channels, H, W)``, by name.

    ``kind``: ``"none"`` (identity), ``"batch"`` (batch norm over N, H, W per channel),
    ``"layer"`` (layer norm over C, H, W per image, per-element gamma/beta: needs ``spatial=(H, W)``),
    ``"layer_scalar"`` (the slide's layer norm, scalar gamma/beta), ``"group"`` (group norm,
    torch's :class:`torch.nn.GroupNorm`: ``groups`` groups of channels per image, or one group per
    channel when ``channels < groups``; per-channel gamma/beta). With ``virtual_batch``, ``"batch"``
    is a :class:`GhostBatchNorm2d` (training statistics over groups of that many images). ``impl``: ``"convnets"`` (this
    module) or ``"torch"`` (torch's modules).
    """
    if impl not in ("convnets", "torch"):
        raise ValueError(f"impl must be 'convnets' or 'torch'; got {impl!r}")
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        if virtual_batch is not None:
            return GhostBatchNorm2d(channels, virtual_batch)
        return BatchNorm2d(channels) if impl == "convnets" else nn.BatchNorm2d(channels)
    if kind == "group":
        g = min(groups, channels)
        if channels % g:
            raise ValueError(f"group norm needs channels ({channels}) divisible by groups ({g})")
        return nn.GroupNorm(g, channels)
    if kind in ("layer", "layer_scalar"):
        if spatial is None:
            raise ValueError(f"norm_layer({kind!r}) normalizes over (C, H, W): pass spatial=(H, W)")
        shape = (channels, *spatial)
        if kind == "layer_scalar":
            return ScalarLayerNorm(shape)
        return LayerNorm(shape) if impl == "convnets" else nn.LayerNorm(shape)
    raise ValueError(f"unknown normalization {kind!r}; choose 'none', 'batch', 'layer', 'layer_scalar' or 'group'")


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """One convolution that computes ``bn(conv(x))`` for a batch-norm layer in **eval mode**.

    In eval mode batch norm is a fixed per-channel affine map,
    ``y_c = gamma_c * (z_c - running_mean_c) / sqrt(running_var_c + eps) + beta_c``, so it can be
    folded into the convolution before it: with ``s_c = gamma_c / sqrt(running_var_c + eps)``,
    the new weight is ``W[c] * s_c`` (every input channel and tap of output channel ``c``) and
    the new bias ``(b_c - running_mean_c) * s_c + beta_c`` (``b_c = 0`` for a conv without bias).
    At inference this saves the normalization layer's pass over the feature map.

    ``conv``: any :class:`torch.nn.Conv2d` (groups, stride, padding, dilation are kept);
    ``bn``: :class:`torch.nn.BatchNorm2d` or :class:`BatchNorm2d` over ``conv.out_channels``
    channels, with running statistics (``affine=False`` means gamma 1, beta 0). Returns a new
    conv (the inputs are not changed); its output ``(N, C_out, H', W')`` equals
    ``bn.eval()(conv(x))`` up to rounding. Not valid for training: there batch norm uses the
    batch's statistics, which a fixed convolution cannot.
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"fold_batchnorm expects an nn.Conv2d; got {type(conv).__name__}")
    mean, var = getattr(bn, "running_mean", None), getattr(bn, "running_var", None)
    if mean is None or var is None:
        raise ValueError("fold_batchnorm needs a batch-norm layer with running statistics "
                         "(track_running_stats=True)")
    if mean.numel() != conv.out_channels:
        raise ValueError(f"batch norm has {mean.numel()} channels, the conv outputs {conv.out_channels}")
    w = conv.weight
    gamma = bn.weight if getattr(bn, "weight", None) is not None else torch.ones_like(mean)
    beta = bn.bias if getattr(bn, "bias", None) is not None else torch.zeros_like(mean)
    b = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    scale = gamma.to(var.dtype) * torch.rsqrt(var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                      padding_mode=conv.padding_mode, device=w.device, dtype=w.dtype)
    fused.weight.copy_(w * scale.to(w.dtype).reshape(-1, 1, 1, 1))
    fused.bias.copy_(((b.to(var.dtype) - mean) * scale + beta.to(var.dtype)).to(w.dtype))
    return fused


@torch.no_grad()
def batch_stat_accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int,
                        shuffle: bool = True, seed: int = 0) -> float:
    """Test accuracy when batch norm normalizes with the statistics of each test batch of
    ``batch_size`` (train mode) instead of its running statistics: what a forgotten
    ``model.eval()`` does. Runs on a copy, so the model's running statistics are untouched.

    ``X``: ``(N, C, H, W)`` images, ``y``: ``(N,)`` labels. ``shuffle`` (seeded) puts the images in
    random order first (MNIST 5k's test set is sorted by label, and consecutive batches would each
    hold one digit); ``shuffle=False`` keeps the order. Only full batches are counted.
    """
    import copy

    if shuffle:
        perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
        X, y = X[perm], y[perm]
    twin = copy.deepcopy(net).train()
    correct = 0
    for i in range(0, len(X) - batch_size + 1, batch_size):  # full batches only
        correct += int((twin(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / (len(X) // batch_size * batch_size)
