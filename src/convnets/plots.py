"""Figures the chapters share: images tiled into one, a grid of images with titles, and the
loss and accuracy curves of a training run.

Explained in the chapter "Data and the training loop" (``book/01-data-and-training.md``, the
curves) and used by "What convolutional networks learn" (``book/08-interpretation.md``, the
grids). Matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .train import History

__all__ = ["normalize01", "image_grid", "plot_grid", "plot_history"]


def normalize01(t: torch.Tensor, per_item: bool) -> torch.Tensor:
    """Scale ``t`` to [0, 1]: each item along dim 0 on its own (``per_item``) or all together.
    A constant item becomes 0 (no division by zero)."""
    if per_item:
        flat = t.reshape(len(t), -1)
        lo = flat.min(1).values.view(-1, *[1] * (t.ndim - 1))
        hi = flat.max(1).values.view(-1, *[1] * (t.ndim - 1))
    else:
        lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo).clamp_min(1e-12)


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile images ``(N, C, h, w)`` into one image ``(C, H, W)``, ``nrow`` images per row
    (default: about a square), separated and framed by ``pad`` pixels of ``pad_value``.

    The result is ``(C, rows (h + pad) + pad, nrow (w + pad) + pad)`` with ``rows = ceil(N / nrow)``,
    also when ``N < nrow``. This is :func:`torchvision.utils.make_grid` keeping ``C`` as it is
    (make_grid turns one channel into three and returns a single image unframed).
    """
    from torchvision.utils import make_grid

    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, h, w); got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("no images to tile")
    nrow = nrow or math.ceil(math.sqrt(n))
    if n == 1:
        grid = torch.nn.functional.pad(images[0], (pad, pad, pad, pad), value=float(pad_value))
    else:
        grid = make_grid(images, nrow=nrow, padding=pad, pad_value=float(pad_value))[:c]
    missing = nrow * (w + pad) + pad - grid.shape[-1]  # make_grid makes only n columns when n < nrow
    if missing > 0:
        grid = torch.nn.functional.pad(grid, (0, missing), value=float(pad_value))
    return grid


def plot_grid(images: torch.Tensor | Sequence[torch.Tensor], titles: Sequence[str] | None = None,
              nrow: int | None = None, size: float = 1.2, cmap: str = "gray", normalize: bool = True,
              suptitle: str | None = None, row_labels: Sequence[str] | None = None):
    """Show images ``(N, C, h, w)`` (C = 1 or 3; ``(N, h, w)`` is read as C = 1) in a grid of
    axes, ``nrow`` per row; returns the figure.

    ``normalize`` stretches each image to [0, 1]; ``titles`` go above the images, ``row_labels``
    to the left of the rows."""
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
        imgs = normalize01(imgs, per_item=True)
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


def plot_history(history: "History", axes: Any = None, label: str | None = None, title: str | None = None):
    """Loss and accuracy per epoch of a :class:`convnets.train.History`, train (solid) and
    validation (dashed, when recorded), on two axes (new ones when ``axes`` is ``None``; pass the
    same axes again to overlay runs, told apart by ``label``). Returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    tag = f"{label} " if label else ""
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        (line,) = ax.plot(history.epoch, getattr(history, f"train_{key}"), label=f"{tag}train")
        vals = getattr(history, f"val_{key}")
        if not all(math.isnan(v) for v in vals):
            ax.plot(history.epoch, vals, "--", color=line.get_color(), label=f"{tag}validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        axes[0].figure.suptitle(title)
    return axes
