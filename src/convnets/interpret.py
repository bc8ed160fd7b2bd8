"""What a convolutional network has learned: filters, top-activating patches, class models, saliency.

Explained in the chapter "What convolutional networks learn" (``book/08-interpretation.md``),
which follows the lecture's slides «Интерпретация моделей», «Что находят свёрточные сети?»,
«Слой 1» … «Слой 5» and «Максимизация вероятности класса».

- :func:`first_conv`, :func:`filter_grid`: the first layer's filters as one image.
- :func:`receptive_field` (from :mod:`convnets.receptive`): the input window that one unit of a
  layer sees, computed from the layers themselves.
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

from .plots import image_grid, normalize01, plot_grid
from .plots import normalize01 as _normalize01  # noqa: F401  (book/08 calls I._normalize01)
# The receptive-field tracer lives in convnets.receptive; released notebooks import it from here.
from .receptive import ReceptiveField, StopForward, layer_name, receptive_field
from .utils import eval_mode, iter_batches, model_device, split_outputs

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

def _jittered(x: torch.Tensor, jitter: int, g: torch.Generator) -> torch.Tensor:
    """``x (N, C, H, W)`` rolled by a random shift of up to ``jitter`` pixels in each direction
    (the same for the whole batch): the jitter regulariser of gradient-ascent visualisations."""
    if not jitter:
        return x
    dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))

def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first :class:`~torch.nn.Conv2d` of ``model`` in registration order (its layer 1)."""
    if isinstance(model, nn.Conv2d):
        return model
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d: pass a convolutional network")


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
    w = normalize01(w, per_item=normalize == "each")
    return image_grid(w, nrow=nrow, pad=pad)


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
        return image_grid(normalize01(crops.float(), per_item=True), nrow=self.crops.shape[1], pad=pad)


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
    name = layer_name(model, layer)
    module = model.get_submodule(name)
    rf: ReceptiveField | None = None
    dev = model_device(model, device)
    chans = None if channels is None else torch.as_tensor(list(channels), dtype=torch.long)
    best_v = best_i = best_p = best_c = None
    seen = 0
    grabbed: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        # Read the output here: a later in-place ReLU would change it, and nothing after it is needed.
        grabbed["a"] = out.detach()
        raise StopForward

    handle = module.register_forward_hook(hook)
    try:
        for X, _ in iter_batches(data, batch_size):
            X = X.to(dev)
            if rf is None:
                handle.remove()  # the receptive field's own forward pass must not stop here
                rf = receptive_field(model, name, input_size=(1, *X.shape[1:]))
                handle = module.register_forward_hook(hook)
            try:
                with eval_mode(model):
                    model(X)
            except StopForward:
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
    """Blur images ``(N, C, H, W)`` with a Gaussian of standard deviation ``sigma`` pixels
    (torchvision's ``gaussian_blur``: reflect padding, a kernel of side ``2 ceil(3 sigma) + 1``,
    cut to what reflect padding allows on small images and renormalised); ``sigma <= 0``
    returns ``x``."""
    if sigma <= 0:
        return x
    from torchvision.transforms.v2 import functional as TF

    r = max(1, int(math.ceil(3 * sigma)))
    side = [2 * min(r, x.shape[-2] - 1) + 1, 2 * min(r, x.shape[-1] - 1) + 1]
    return TF.gaussian_blur(x, kernel_size=side, sigma=[float(sigma), float(sigma)])


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
    dev = model_device(model, device)
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
    scores, objs, norms = [], [], []
    logits = None
    with eval_mode(model):
        for step in range(steps + 1):
            x_var = x.detach().requires_grad_(True)
            img = _jittered(x_var, jitter, g) if step < steps else x_var
            logits, _ = split_outputs(model(img))
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
    with eval_mode(model):
        logits, _ = split_outputs(model(X))
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
    s = grad.abs().amax(1)
    return s[0] if single else s


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
    dev = model_device(model)
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
    handle = module.register_forward_hook(hook)
    objs, acts = [], []
    with eval_mode(model):
        try:
            for step in range(steps + 1):
                x_var = x.detach().requires_grad_(True)
                img = _jittered(x_var, jitter, g) if step < steps else x_var
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
