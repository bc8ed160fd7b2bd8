"""Data augmentation and test-time augmentation (TTA).

Explained in the chapter "Data augmentation" (``book/04-augmentation.md``), slides «Аугментация».

Two kinds of transform live here:

- **per-image pipelines** on :mod:`torchvision.transforms.v2` (:func:`digits_pipeline`,
  :func:`photos_pipeline`, :func:`gallery_transforms`): what a ``DataLoader`` applies to each
  image; each image gets its own random parameters;
- **batch operations** on tensors ``(N, C, H, W)`` with per-sample randomness drawn from an explicit
  :class:`torch.Generator` (:func:`random_crop`, :func:`random_hflip`, :func:`cutout`,
  :func:`random_affine`, :func:`mixup`, :func:`cutmix`), composed by :class:`BatchAugment` into a
  ``batch_transform`` for :func:`convnets.train.fit`. They run on whatever device the batch is
  on (random numbers are drawn on the CPU and moved), which is far faster on a CPU than
  transforming images one at a time, and give the same numbers on every device.

Test-time augmentation: :func:`tta_predict` averages the softmax outputs over several views of
each image, either fixed views (:func:`flip_views`, :func:`five_crop_views`,
:func:`ten_crop_views`, as in AlexNet) or ``n`` random copies.

The randomness protocol of the batch operations (which numbers are drawn, in which order) is
documented in each function, because the assignment ``03-augmentation`` asks for the same
functions and its tests compare results for a fixed generator.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .utils import eval_mode, iter_batches, model_device, split_outputs

__all__ = [
    "digits_pipeline",
    "photos_pipeline",
    "gallery_transforms",
    "PIPELINES",
    "get_pipeline",
    "random_crop",
    "random_hflip",
    "cutout",
    "random_affine",
    "one_hot",
    "mixup",
    "cutmix",
    "BatchAugment",
    "digits_batch_augment",
    "MixUp",
    "CutMix",
    "identity_view",
    "flip_views",
    "five_crop_views",
    "ten_crop_views",
    "tta_predict",
]


# ----------------------------------------------------------------------------------------------
# Per-image pipelines (torchvision.transforms.v2)
# ----------------------------------------------------------------------------------------------


def digits_pipeline(
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    elastic: bool = True,
    padding: int = 2,
    erasing: float = 0.25,
):
    """Label-preserving augmentation for handwritten digits ``(1, H, W)`` in ``[0, 1]``.

    Small affine moves (rotation up to ``degrees``, shifts up to ``translate`` of the side,
    zoom within ``scale``), an elastic distortion (as Simard et al. 2003 did for MNIST), a random
    crop after zero ``padding``, and random erasing with probability ``erasing``. No flips and no
    large rotations: a mirrored or upside-down digit is another digit, or none (a rotated 6 is a 9).
    Returns a :class:`torchvision.transforms.v2.Compose`.
    """
    from torchvision.transforms import v2

    if degrees < 0 or not 0 <= translate < 1 or not 0 <= erasing <= 1 or padding < 0:
        raise ValueError(
            "need degrees >= 0, 0 <= translate < 1, padding >= 0 and 0 <= erasing <= 1; got "
            f"degrees={degrees}, translate={translate}, padding={padding}, erasing={erasing}"
        )
    steps: list = [v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale)]
    if elastic:
        steps.append(v2.ElasticTransform(alpha=20.0, sigma=4.0))
    if padding:
        steps.append(_PadCrop(padding))
    if erasing:
        steps.append(v2.RandomErasing(p=erasing, scale=(0.02, 0.1), value=0))
    return v2.Compose(steps)


class _PadCrop(nn.Module):
    """Zero-pad by ``padding`` and crop back to the input's size at a random place (any size)."""

    def __init__(self, padding: int):
        super().__init__()
        self.padding = int(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import v2

        return v2.RandomCrop(tuple(x.shape[-2:]), padding=self.padding)(x)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


def photos_pipeline(size: int = 224, erasing: float = 0.25):
    """Standard augmentation for colour photographs ``(3, H, W)`` in ``[0, 1]``.

    Random resized crop to ``size`` (the Inception-style scale 0.35-1 of the area), horizontal
    flip, colour jitter, rotation up to 15 degrees, Gaussian blur (half of the time) and random
    erasing with probability ``erasing``. Returns a :class:`torchvision.transforms.v2.Compose`.
    """
    from torchvision.transforms import v2

    if size < 8:
        raise ValueError(f"size must be at least 8 pixels; got {size}")
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
        v2.RandomRotation(15),
        v2.RandomApply([v2.GaussianBlur(9, sigma=(0.5, 2.5))], p=0.5),
        v2.RandomErasing(p=erasing, scale=(0.02, 0.15), value=0),
    ])


def gallery_transforms(kind: str = "photos", size: int | None = None) -> dict[str, Callable]:
    """One transform per name, each always applied (p = 1), for a gallery of what each does.

    ``kind="photos"``: flip, random resized crop, colour jitter, rotation, blur, erasing;
    ``kind="digits"``: affine, elastic, crop with padding, erasing,
    and two label-breaking ones (flip, rotation by 180 degrees). ``size`` is the output side of
    the resized crop for photos (the input's shorter side when ``None``).
    """
    from torchvision.transforms import v2

    if kind == "photos":
        def rrc(x: torch.Tensor) -> torch.Tensor:
            s = size or min(x.shape[-2:])
            return v2.RandomResizedCrop(s, scale=(0.35, 1.0), antialias=True)(x)

        return {
            "horizontal flip": v2.RandomHorizontalFlip(p=1.0),
            "random resized crop": rrc,
            "colour jitter": v2.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.6, hue=0.08),
            "rotation ±25°": v2.RandomRotation(25),
            "Gaussian blur": v2.GaussianBlur(15, sigma=(2.0, 4.0)),
            "random erasing": v2.RandomErasing(p=1.0, scale=(0.05, 0.2), value=0),
        }
    if kind == "digits":
        return {
            "affine (±10°, ±10%, ×0.9-1.1)": v2.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            "elastic": v2.ElasticTransform(alpha=20.0, sigma=4.0),
            "crop, padding 3": _PadCrop(3),
            "random erasing": v2.RandomErasing(p=1.0, scale=(0.05, 0.15), value=0),
            "flip (breaks labels)": v2.RandomHorizontalFlip(p=1.0),
            "rotate 180° (breaks labels)": v2.RandomRotation((180, 180)),
        }
    raise ValueError(f"kind must be 'photos' or 'digits'; got {kind!r}")


#: Named per-image pipelines: ``get_pipeline(name, **kwargs)``.
PIPELINES: dict[str, Callable[..., Callable]] = {"digits": digits_pipeline, "photos": photos_pipeline}


def get_pipeline(name: str, **kwargs) -> Callable:
    """The named per-image pipeline (``"digits"`` or ``"photos"``), built with ``kwargs``."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; choose from {sorted(PIPELINES)}")
    return PIPELINES[name](**kwargs)


# ----------------------------------------------------------------------------------------------
# Batch operations with an explicit generator
# ----------------------------------------------------------------------------------------------


def _check_batch(X: torch.Tensor, name: str) -> None:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{name} expects a tensor of images (N, C, H, W); got {type(X).__name__}")
    if X.ndim != 4:
        raise ValueError(f"{name} expects a batch of images (N, C, H, W); got shape {tuple(X.shape)}: "
                         "add a batch dimension with X[None] for one image")
    if not X.is_floating_point():
        raise TypeError(f"{name} expects floating-point images; got {X.dtype}: convert with X.float() / 255")


def _generator(generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {type(generator).__name__}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("pass a CPU torch.Generator: random numbers are drawn on the CPU and moved to the batch's device")
    return generator


def random_crop(X: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad each image by ``padding`` pixels and crop it back to ``(H, W)`` at a random place.

    ``X``: ``(N, C, H, W)`` float; returns a new tensor of the same shape, dtype and device.
    Randomness: ``top = torch.randint(0, 2*padding + 1, (N,), generator=generator)`` first, then
    ``left`` the same way; image ``n`` becomes ``pad(X[n])[:, top:top+H, left:left+W]``, i.e.
    shifted by ``(padding - top, padding - left)`` pixels with zeros coming in (torchvision's
    ``RandomCrop(size, padding)`` per image).
    """
    _check_batch(X, "random_crop")
    generator = _generator(generator)
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer number of pixels; got {padding!r}")
    N, C, H, W = X.shape
    top = torch.randint(0, 2 * padding + 1, (N,), generator=generator).to(X.device)
    left = torch.randint(0, 2 * padding + 1, (N,), generator=generator).to(X.device)
    if padding == 0:
        return X.clone()
    Xp = F.pad(X, (padding, padding, padding, padding))
    rows = top[:, None] + torch.arange(H, device=X.device)  # (N, H)
    cols = left[:, None] + torch.arange(W, device=X.device)  # (N, W)
    n = torch.arange(N, device=X.device)[:, None, None]
    out = Xp.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_hflip(X: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``.

    ``X``: ``(N, C, H, W)``; returns a new tensor of the same shape. Randomness: image ``n`` is
    flipped when ``torch.rand(N, generator=generator)[n] < p``.
    """
    _check_batch(X, "random_hflip")
    generator = _generator(generator)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1]; got {p}")
    flip = (torch.rand(X.shape[0], generator=generator) < p).to(X.device)
    return torch.where(flip[:, None, None, None], X.flip(-1), X)


def cutout(X: torch.Tensor, size: int, generator: torch.Generator | None = None,
           value: float = 0.0) -> torch.Tensor:
    """Cutout (DeVries and Taylor, 2017): fill a ``size`` x ``size`` square of each image with ``value``.

    The square's centre is uniform over the image, so the square may stick out of it (then only
    its part inside is filled). Randomness: ``cy = torch.randint(0, H, (N,), generator=generator)``
    first, then ``cx = torch.randint(0, W, (N,), ...)``; rows ``max(cy - size//2, 0)`` to
    ``min(cy - size//2 + size, H)`` (exclusive) and likewise the columns. ``X``: ``(N, C, H, W)``;
    returns a new tensor of the same shape.
    """
    _check_batch(X, "cutout")
    generator = _generator(generator)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be a non-negative integer number of pixels; got {size!r}")
    N, C, H, W = X.shape
    cy = torch.randint(0, H, (N,), generator=generator).to(X.device)
    cx = torch.randint(0, W, (N,), generator=generator).to(X.device)
    y0, x0 = (cy - size // 2).clamp(min=0), (cx - size // 2).clamp(min=0)
    y1, x1 = (cy - size // 2 + size).clamp(max=H), (cx - size // 2 + size).clamp(max=W)
    r = torch.arange(H, device=X.device)[None, :]
    c = torch.arange(W, device=X.device)[None, :]
    mask = ((r >= y0[:, None]) & (r < y1[:, None]))[:, :, None] & ((c >= x0[:, None]) & (c < x1[:, None]))[:, None, :]
    return X.masked_fill(mask[:, None], value)


def random_affine(
    X: torch.Tensor,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A random rotation, zoom and shift of each image, in one bilinear resampling.

    Angle uniform in ``[-degrees, degrees]``, zoom uniform in ``scale``, shift uniform in
    ``[-translate, translate]`` of the side along each axis; zeros come in at the borders.
    Randomness: one ``torch.rand(N, 4, generator=generator)`` (angle, zoom, dx, dy).
    ``X``: ``(N, C, H, W)``; returns a new tensor of the same shape. The batch counterpart of
    torchvision's ``RandomAffine`` (sampled per image, computed with ``affine_grid``).
    """
    _check_batch(X, "random_affine")
    generator = _generator(generator)
    if degrees < 0 or not 0 <= translate < 1 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"need degrees >= 0, 0 <= translate < 1, 0 < scale[0] <= scale[1]; "
                         f"got degrees={degrees}, translate={translate}, scale={scale}")
    N = X.shape[0]
    u = torch.rand(N, 4, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * math.radians(degrees)
    zoom = scale[0] + (scale[1] - scale[0]) * u[:, 1]
    shift = (2 * u[:, 2:] - 1) * translate * 2  # normalised coordinates span 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # theta maps output coordinates to input ones: the inverse of "rotate, zoom, then shift".
    theta = torch.stack([
        torch.stack([cos, sin, -(cos * shift[:, 0] + sin * shift[:, 1])], 1),
        torch.stack([-sin, cos, -(-sin * shift[:, 0] + cos * shift[:, 1])], 1),
    ], 1).to(device=X.device, dtype=X.dtype)
    grid = F.affine_grid(theta, list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float targets ``(N, K)``: class indices ``(N,)`` made one-hot, soft targets passed through."""
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise ValueError(f"soft targets have {y.shape[1]} columns, expected num_classes={num_classes}")
        return y.float()
    if y.ndim != 1 or y.is_floating_point():
        raise TypeError(f"labels must be int64 class indices (N,) or soft targets (N, K); got {y.dtype} {tuple(y.shape)}")
    return F.one_hot(y, num_classes).float()


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """A Beta(alpha, alpha) draw whose seed comes from ``generator`` (torch's Beta takes none)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive; got {alpha}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(X: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 0.2,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """mixup (Zhang et al., 2018): blend each image and its target with another one of the batch.

    ``lam ~ Beta(alpha, alpha)`` once per batch, ``perm`` a random permutation;
    ``X' = lam X + (1 - lam) X[perm]``, ``y' = lam onehot(y) + (1 - lam) onehot(y)[perm]``.
    Returns ``X'`` ``(N, C, H, W)`` and soft targets ``(N, K)`` (``nn.CrossEntropyLoss`` takes them).
    """
    _check_batch(X, "mixup")
    generator = _generator(generator)
    lam = _beta(alpha, generator)
    perm = torch.randperm(X.shape[0], generator=generator).to(X.device)
    Y = one_hot(y, num_classes).to(X.device)
    return lam * X + (1 - lam) * X[perm], lam * Y + (1 - lam) * Y[perm]


def cutmix(X: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float = 1.0,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al., 2019): paste a box from another image of the batch, mix targets by area.

    ``lam ~ Beta(alpha, alpha)``; a box of area ``(1 - lam) H W`` centred uniformly (clipped at the
    borders) is copied from ``X[perm]``; the targets are mixed by the box's actual area.
    Returns images ``(N, C, H, W)`` and soft targets ``(N, K)``.
    """
    _check_batch(X, "cutmix")
    generator = _generator(generator)
    lam = _beta(alpha, generator)
    perm = torch.randperm(X.shape[0], generator=generator).to(X.device)
    H, W = X.shape[-2:]
    r = math.sqrt(1.0 - lam)
    bh, bw = int(H * r), int(W * r)
    cy = int(torch.randint(0, H, (1,), generator=generator))
    cx = int(torch.randint(0, W, (1,), generator=generator))
    y0, y1 = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, H)
    x0, x1 = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, W)
    out = X.clone()
    out[:, :, y0:y1, x0:x1] = X[perm][:, :, y0:y1, x0:x1]
    lam_box = 1.0 - (y1 - y0) * (x1 - x0) / (H * W)
    Y = one_hot(y, num_classes).to(X.device)
    return out, lam_box * Y + (1 - lam_box) * Y[perm]


BatchOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class BatchAugment:
    """A chain of batch operations with its own seeded generator: a ``batch_transform`` for ``fit``.

    ``ops`` are callables ``op(X, generator) -> X`` on ``(N, C, H, W)`` batches (for example
    ``lambda X, g: random_crop(X, 2, g)``). Like torchvision's v2 transforms, a call passes labels
    through: ``aug(X)`` returns the images, ``aug(X, y)`` returns ``(images, y)`` with ``y``
    untouched, so an instance serves both as ``fit(..., batch_transform=aug)`` and as a random
    view for :func:`tta_predict`.
    """

    def __init__(self, ops: Sequence[BatchOp], seed: int = 0, names: Sequence[str] | None = None):
        if not all(callable(op) for op in ops):
            raise TypeError("every op must be callable as op(X, generator) -> X")
        self.ops = list(ops)
        self.names = list(names) if names is not None else [getattr(op, "__name__", "op") for op in ops]
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self) -> "BatchAugment":
        """Restart the random stream from ``seed`` (the same augmentations again)."""
        self.generator.manual_seed(self.seed)
        return self

    def __call__(self, X: torch.Tensor, y: torch.Tensor | None = None):
        for op in self.ops:
            X = op(X, self.generator)
        return X if y is None else (X, y)

    def __repr__(self) -> str:
        return f"BatchAugment([{', '.join(self.names)}], seed={self.seed})"


def digits_batch_augment(degrees: float = 10.0, translate: float = 0.1,
                         scale: tuple[float, float] = (0.9, 1.1), cutout_size: int = 0,
                         seed: int = 0) -> BatchAugment:
    """The batch version of the digit augmentation the chapter trains with: a random affine
    move per image (:func:`random_affine`), then optionally :func:`cutout`."""
    ops: list[BatchOp] = [lambda X, g: random_affine(X, degrees, translate, scale, g)]
    names = [f"random_affine({degrees}°, {translate}, {scale})"]
    if cutout_size:
        ops.append(lambda X, g: cutout(X, cutout_size, g))
        names.append(f"cutout({cutout_size})")
    return BatchAugment(ops, seed=seed, names=names)


class MixUp:
    """:func:`mixup` as a ``batch_transform`` for ``fit``: ``(X, y) -> (X', soft targets)``."""

    def __init__(self, num_classes: int, alpha: float = 0.2, seed: int = 0):
        self.num_classes, self.alpha = num_classes, alpha
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mixup(X, y, self.num_classes, self.alpha, self.generator)


class CutMix(MixUp):
    """:func:`cutmix` as a ``batch_transform`` for ``fit``: ``(X, y) -> (X', soft targets)``."""

    def __init__(self, num_classes: int, alpha: float = 1.0, seed: int = 0):
        super().__init__(num_classes, alpha, seed)

    def __call__(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return cutmix(X, y, self.num_classes, self.alpha, self.generator)


# ----------------------------------------------------------------------------------------------
# Test-time augmentation
# ----------------------------------------------------------------------------------------------


def identity_view(X: torch.Tensor) -> torch.Tensor:
    """The image itself (the plain prediction as one TTA view)."""
    return X


def _hflip_view(X: torch.Tensor) -> torch.Tensor:
    return X.flip(-1)


def flip_views() -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Two views: the image and its mirror image (wrong for digits and text)."""
    return [identity_view, _hflip_view]


_CROP_NAMES = ("top_left", "top_right", "bottom_left", "bottom_right", "center")


def _crop_view(index: int, size: int, padding: int, ten: bool):
    """View ``index`` of torchvision's ``five_crop`` (or ``ten_crop`` when ``ten``) of side
    ``size``, after zero-padding by ``padding``."""
    from torchvision.transforms.v2 import functional as TF

    def view(X: torch.Tensor) -> torch.Tensor:
        if padding:
            X = F.pad(X, (padding,) * 4)
        H, W = X.shape[-2:]
        if size > min(H, W):
            raise ValueError(f"crop size {size} exceeds the (padded) image {H}x{W}")
        crops = TF.ten_crop(X, [size, size]) if ten else TF.five_crop(X, [size, size])
        return crops[index]

    view.__name__ = _CROP_NAMES[index % 5] + ("_flipped" if index >= 5 else "")
    return view


def five_crop_views(size: int, padding: int = 0) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Five views: the four corner crops and the centre crop of side ``size`` (AlexNet's TTA),
    from :func:`torchvision.transforms.v2.functional.five_crop`.

    Order as torchvision's: top-left, top-right, bottom-left, bottom-right, centre.
    ``padding`` zero-pads first, so ``five_crop_views(28, padding=2)`` on 28x28 digits gives the
    image and four copies shifted by 2 pixels diagonally.
    """
    if size < 1 or padding < 0:
        raise ValueError(f"need size >= 1 and padding >= 0; got size={size}, padding={padding}")
    return [_crop_view(i, size, padding, ten=False) for i in range(5)]


def ten_crop_views(size: int, padding: int = 0) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Ten views: :func:`five_crop_views` and their mirror images (AlexNet's 10 patches), from
    torchvision's ``ten_crop``: the last five are the five crops of the mirrored image."""
    if size < 1 or padding < 0:
        raise ValueError(f"need size >= 1 and padding >= 0; got size={size}, padding={padding}")
    return [_crop_view(i, size, padding, ten=True) for i in range(10)]


@torch.no_grad()
def tta_predict(
    model: nn.Module,
    x: torch.Tensor,
    transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]] | Callable[[torch.Tensor], torch.Tensor] | None = None,
    n: int | None = None,
    batch_size: int = 1000,
    include_identity: bool = True,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Class probabilities ``(N, K)`` averaged over augmented views of each image (test-time augmentation).

    ``x``: images ``(N, C, H, W)``. ``transforms``:

    - a sequence of views ``f(X) -> X`` (e.g. :func:`ten_crop_views`): the softmax outputs of the
      model on every view are averaged, ``n`` must be ``None``;
    - one random transform and ``n``: ``n`` views, the first the image itself when
      ``include_identity`` (then ``n - 1`` random copies), all random otherwise;
    - ``None``: the plain prediction (one view, the image).

    The cost is one forward pass per view: ``n`` views take about ``n`` times as long. The model
    runs in eval mode (its mode is restored); the result is on the CPU.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W); got {getattr(x, 'shape', type(x))}")
    if transforms is None:
        views: list[Callable] = [identity_view]
        if n not in (None, 1):
            raise ValueError("without transforms there is one view; pass n=None")
    elif callable(transforms) and not isinstance(transforms, (list, tuple)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"with one random transform, give the number of views n >= 1; got n={n!r}")
        views = ([identity_view] if include_identity else []) + [transforms] * (n - int(include_identity))
    else:
        views = list(transforms)
        if n is not None:
            raise ValueError("n is only for one random transform; with a list of views, n is its length")
        if not views or not all(callable(v) for v in views):
            raise TypeError("transforms must be a non-empty sequence of callables f(X) -> X")
    dev = model_device(model, device)
    outs = []
    with eval_mode(model):
        for xb, _ in iter_batches(x, batch_size):
            xb = xb.to(dev)
            acc = None
            for v in views:
                p = torch.softmax(split_outputs(model(v(xb)))[0].float(), dim=1)
                acc = p if acc is None else acc + p
            outs.append((acc / len(views)).cpu())
    return torch.cat(outs) if outs else torch.empty(0)
