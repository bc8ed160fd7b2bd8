"""Which pixels a decision rests on: occlusion sensitivity, Grad-CAM, class activation maps, and
where a map's mass lies relative to the strokes of a digit.

Explained in the chapter "What convolutional networks learn" (``book/08-interpretation.md``),
next to the saliency maps of :func:`convnets.interpret.saliency`.

- :func:`occlusion`: slide a gray (or black) square over the image and record how much the
  class score falls with the square at each place (Zeiler and Fergus, 2013, Sec. 4.2);
  spread onto pixels as the mean fall over the windows that cover each pixel.
- :func:`grad_cam`: the feature maps ``A^k`` of a layer weighted by the spatial mean of the
  class score's gradient, ``ReLU(sum_k alpha_k^c A^k)``, ``alpha_k^c = mean_ij dS_c/dA^k_ij``
  (Selvaraju et al., 2017), upsampled to the input.
- :func:`class_activation_map`: for a network whose head is global average pooling then one
  linear layer, ``sum_k w^c_k A^k`` (Zhou et al., 2016): Grad-CAM at the last layer equals its
  positive part divided by the number of positions (a test checks this identity).
- :func:`stroke_regions` and :func:`region_shares`: the ink of a digit, a band of background
  pixels within ``band`` pixels of the ink, and the far background; the share of a map's mass
  in each, per unit area.

Every function runs the model in eval mode (restored after) on the input's device and needs no
download.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .utils import eval_mode

__all__ = [
    "occlusion",
    "occlusion_positions",
    "grad_cam",
    "class_activation_map",
    "stroke_regions",
    "region_shares",
]


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def _resolve_targets(logits: torch.Tensor, target: int | torch.Tensor | None) -> torch.Tensor:
    """One class index per image ``(N,)``: the given ones, or the predicted class."""
    n, k = logits.shape
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target must be one class or one per image ({n}); got {t.numel()}")
    if int(t.min()) < 0 or int(t.max()) >= k:
        raise ValueError(f"target must lie in 0..{k - 1}")
    return t


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        raise ValueError("x must be images (N, C, H, W) or one image (C, H, W)")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _score_fn(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "logit":
        return lambda lg, t: lg.gather(1, t[:, None])[:, 0]
    if kind == "prob":
        return lambda lg, t: lg.float().softmax(1).gather(1, t[:, None])[:, 0]
    raise ValueError(f"score must be 'logit' or 'prob'; got {kind!r}")


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride`` pixels, plus one flush with the far edge
    so every pixel is covered."""
    if window > size:
        raise ValueError(f"window {window} is larger than the image side {size}")
    s = list(range(0, size - window + 1, stride))
    if s[-1] != size - window:
        s.append(size - window)
    return s


@torch.no_grad()
def occlusion_positions(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor | None = None,
                        window: int = 4, stride: int = 2, fill: float = 0.0, score: str = "logit",
                        batch_size: int = 512) -> tuple[torch.Tensor, list[int], list[int]]:
    """The fall of the class score with a ``window`` x ``window`` square of value ``fill`` at each
    place (Zeiler and Fergus's occlusion experiment).

    ``x``: images ``(N, C, H, W)`` (or one ``(C, H, W)``); ``target``: a class, one per image, or
    ``None`` for each image's predicted class; ``score``: ``"logit"`` (the unnormalised score) or
    ``"prob"`` (the softmax probability, as in the paper's figures). Returns ``(drop, rows,
    cols)``: ``drop (N, len(rows), len(cols))`` is ``S_c(x) - S_c(x occluded at (r, c))`` for the
    square whose top-left corner is ``(rows[i], cols[j])``; positive where hiding the square hurts.
    """
    X, _ = _as_batch(x)
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive; got {window}, {stride}")
    N, C, H, W = X.shape
    rows, cols = _starts(H, window, stride), _starts(W, window, stride)
    sfn = _score_fn(score)
    with eval_mode(model):
        lg = _logits(model, X)
        t = _resolve_targets(lg, target)
        base = sfn(lg, t)  # (N,)
        # every (image, position) pair as one batch row: image index and window corner
        pairs = [(n, r, c) for n in range(N) for r in rows for c in cols]
        drops = torch.empty(len(pairs), dtype=torch.float32, device=X.device)
        for b in range(0, len(pairs), batch_size):
            chunk = pairs[b : b + batch_size]
            idx = torch.tensor([p[0] for p in chunk], device=X.device)
            xb = X[idx].clone()
            for m, (_, r, c) in enumerate(chunk):
                xb[m, :, r : r + window, c : c + window] = fill
            drops[b : b + len(chunk)] = (base[idx] - sfn(_logits(model, xb), t[idx])).float()
    return drops.view(N, len(rows), len(cols)), rows, cols


def occlusion(model: nn.Module, x: torch.Tensor, target: int | torch.Tensor | None = None,
              window: int = 4, stride: int = 2, fill: float = 0.0, score: str = "logit",
              batch_size: int = 512) -> torch.Tensor:
    """Occlusion sensitivity per pixel: the mean fall of the class score over every occluding
    square (see :func:`occlusion_positions`) that covers the pixel.

    Returns ``(N, H, W)`` float32 (``(H, W)`` for one image) on ``x``'s device. With ``fill=0``
    on MNIST (black background) a square over the background changes nothing, so the map is zero
    wherever no square touches ink.
    """
    X, single = _as_batch(x)
    drop, rows, cols = occlusion_positions(model, X, target, window, stride, fill, score, batch_size)
    N, _, H, W = X.shape
    total = torch.zeros(N, H, W, device=X.device)
    count = torch.zeros(H, W, device=X.device)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            total[:, r : r + window, c : c + window] += drop[:, i, j, None, None]
            count[r : r + window, c : c + window] += 1
    out = total / count
    return out[0] if single else out


def _capture(model: nn.Module, layer: str | nn.Module, X: torch.Tensor):
    """Run ``model`` on ``X`` and return ``(logits, A)``, ``A`` the output of ``layer`` (still in
    the autograd graph). The hook hands the rest of the network a copy, so a later in-place
    operation cannot change ``A``."""
    module = model.get_submodule(layer) if isinstance(layer, str) else layer
    got: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        if not isinstance(out, torch.Tensor) or out.ndim != 4:
            raise ValueError("the layer must output a feature map (N, C, H, W)")
        got["A"] = out
        return out.clone()

    h = module.register_forward_hook(hook)
    try:
        lg = _logits(model, X)
    finally:
        h.remove()
    if "A" not in got:
        raise ValueError(f"layer {layer!r} did not run in the forward pass")
    return lg, got["A"]


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str | nn.Module,
             target: int | torch.Tensor | None = None, upsample: bool = True,
             relu: bool = True) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): ``L^c = ReLU(sum_k alpha_k^c A^k)`` with
    ``alpha_k^c = (1/Z) sum_ij dS_c / dA^k_ij``, ``A`` the output ``(N, K, h, w)`` of ``layer``
    and ``S_c`` the class score before the softmax.

    ``x``: ``(N, C, H, W)`` or ``(C, H, W)``; ``target`` as in :func:`occlusion`. Returns
    ``(N, H, W)`` (bilinear upsampling to the input, ``upsample=True``) or ``(N, h, w)``;
    ``relu=False`` keeps the negative part. The map is not rescaled.
    """
    X, single = _as_batch(x)
    X = X.detach().float()
    with eval_mode(model):
        with torch.enable_grad():
            lg, A = _capture(model, layer, X)
            t = _resolve_targets(lg.detach(), target)
            (g,) = torch.autograd.grad(lg.gather(1, t[:, None]).sum(), A)
    alpha = g.mean((2, 3), keepdim=True)  # (N, K, 1, 1)
    cam = (alpha * A.detach()).sum(1)  # (N, h, w)
    if relu:
        cam = cam.clamp_min(0)
    if upsample:
        cam = F.interpolate(cam[:, None], size=X.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return cam[0] if single else cam


@torch.no_grad()
def class_activation_map(model: nn.Module, x: torch.Tensor, layer: str | nn.Module, fc: nn.Linear,
                         target: int | torch.Tensor | None = None) -> torch.Tensor:
    """The class activation map ``M_c = sum_k w^c_k A^k`` (Zhou et al. 2016) of a network whose
    head is global average pooling of ``layer``'s output ``A (N, K, h, w)`` followed by the linear
    layer ``fc`` (weight ``(classes, K)``). Returns ``(N, h, w)`` (or ``(h, w)``), not upsampled,
    signed; its spatial mean plus ``fc``'s bias is the class score."""
    X, single = _as_batch(x)
    with eval_mode(model):
        lg, A = _capture(model, layer, X.float())
    t = _resolve_targets(lg, target)
    w = fc.weight[t]  # (N, K)
    cam = (w[:, :, None, None] * A).sum(1)
    return cam[0] if single else cam


def stroke_regions(x: torch.Tensor, ink: float = 0.3, band: int = 2) -> dict[str, torch.Tensor]:
    """Split each image of digits ``(N, 1, H, W)`` (or ``(N, H, W)``) into three boolean masks
    ``(N, H, W)``: ``"ink"`` (pixels above ``ink``), ``"band"`` (other pixels within ``band``
    pixels of the ink, a square neighbourhood: a dilation of the ink by a
    ``(2 band + 1)``-square) and ``"far"`` (the rest of the background)."""
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError("stroke_regions expects one-channel digits")
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"x must be (N, 1, H, W) or (N, H, W); got {tuple(x.shape)}")
    m = x > ink
    k = 2 * band + 1
    near = F.max_pool2d(m[:, None].float(), k, stride=1, padding=band)[:, 0] > 0
    return {"ink": m, "band": near & ~m, "far": ~near}


def region_shares(maps: torch.Tensor, regions: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Where the mass of non-negative maps ``(N, H, W)`` lies: for each region (masks as from
    :func:`stroke_regions`), per image, ``"mass"`` (the region's share of the map's total),
    ``"area"`` (its share of the pixels) and ``"density"`` (mass / area: 1 when the map is spread
    evenly, above 1 where it concentrates; NaN for an empty region). Images whose map is all zero
    get NaN."""
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W); got {tuple(maps.shape)}")
    if (maps < 0).any():
        raise ValueError("maps must be non-negative (take abs or clamp first)")
    total = maps.flatten(1).sum(1)
    total = torch.where(total > 0, total, torch.full_like(total, float("nan")))
    npix = maps[0].numel()
    out = {}
    for name, mask in regions.items():
        mask = mask.to(maps.device)
        mass = (maps * mask).flatten(1).sum(1) / total
        area = mask.flatten(1).float().sum(1) / npix
        dens = mass / torch.where(area > 0, area, torch.full_like(area, float("nan")))
        out[name] = {"mass": mass, "area": area, "density": dens}
    return out
