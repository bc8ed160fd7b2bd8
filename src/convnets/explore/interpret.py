"""Explorer of what the channels of a network respond to: filters and top-activating patches.

Explained in the chapter "What convolutional networks learn" (``book/08-interpretation.md``).

Two forms, as every explorer of :mod:`convnets.explore`:

- :func:`patches_explorer` with ``live=True`` (Jupyter, with a kernel): pick a layer and a
  channel; the channel's top-k patches are shown large, with where they sit in their images;
- the static form (default; works in the rendered book without a kernel): one precomputed
  PNG per layer (a row of top-k patches per channel), switched by a slider in the browser.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..interpret import Patches, plot_grid
from ._static import fig_to_png, static_frames

__all__ = ["layer_figure", "patches_frames", "patches_explorer"]


def _mosaic(crops: torch.Tensor, rows: int, k: int, pad: int = 1) -> torch.Tensor:
    """``crops (rows * k, C, h, w)``, each already in [0, 1], tiled into one image
    ``(H, W)`` (C = 1) or ``(H, W, 3)`` with ``pad`` white pixels between the tiles."""
    n, c, h, w = crops.shape
    out = torch.ones(c, rows * (h + pad) - pad, k * (w + pad) - pad)
    for i in range(n):
        r, j = divmod(i, k)
        out[:, r * (h + pad): r * (h + pad) + h, j * (w + pad): j * (w + pad) + w] = crops[i]
    return out[0] if c != 3 else out.permute(1, 2, 0)


def layer_figure(p: Patches, channels: Sequence[int] | None = None, title: str | None = None, size: float = 0.7):
    """A matplotlib figure: one row per channel (default: the first 8 of ``p``), the channel's
    ``k`` top patches left to right (strongest first), each scaled to [0, 1]. Drawn as one image
    (a mosaic of the patches), which is several times faster than one axes per patch."""
    import matplotlib.pyplot as plt

    from ..plots import normalize01

    rows = list(p.channels[:8] if channels is None else channels)
    idx = [p.channels.index(c) for c in rows]
    crops = p.crops[idx].reshape(-1, *p.crops.shape[2:]).detach().float().cpu()
    if crops.shape[1] not in (1, 3):
        crops = crops.mean(1, keepdim=True)
    crops = normalize01(crops, per_item=True)
    k = p.crops.shape[1]
    h, w = p.rf.size
    mosaic = _mosaic(crops, len(rows), k)
    fig, ax = plt.subplots(figsize=(size * k, size * len(rows) + 0.3))
    ax.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    th = crops.shape[2] + 1
    ax.set_yticks([r * th + (th - 1) / 2 for r in range(len(rows))], [f"ch {c}" for c in rows], fontsize=8)
    ax.tick_params(left=False)
    for sp in ax.spines.values():
        sp.set_visible(False)
    ax.set_title(title or f"{p.layer}: top-{k} patches, {h}x{w} px each", fontsize=10)
    return fig


def patches_frames(patches: Mapping[str, Patches], channels: int | Mapping[str, Sequence[int]] = 8,
                   dpi: int = 72) -> tuple[list[bytes], list[str]]:
    """One PNG per layer of ``patches`` (``{label: Patches}``) and its label: ``channels`` rows
    (the first ones, or the channels given per label)."""
    frames, labels = [], []
    for label, p in patches.items():
        chans = p.channels[:channels] if isinstance(channels, int) else list(channels[label])
        frames.append(fig_to_png(layer_figure(p, chans, title=f"{label}: receptive field "
                                              f"{p.rf.size[0]}x{p.rf.size[1]} px"), dpi=dpi))
        labels.append(label)
    return frames, labels


def _live(patches: Mapping[str, Patches], images: torch.Tensor | None):
    import ipywidgets as w
    import matplotlib.pyplot as plt

    labels = list(patches)
    layer = w.Dropdown(options=labels, value=labels[0], description="layer")
    channel = w.IntSlider(min=0, max=len(patches[labels[0]].channels) - 1, value=0, description="channel #")
    out = w.Output()

    def draw(*_):
        p = patches[layer.value]
        channel.max = len(p.channels) - 1
        r = min(channel.value, channel.max)
        k = p.crops.shape[1]
        with out:
            out.clear_output(wait=True)
            n_rows = 2 if images is not None else 1
            fig, axes = plt.subplots(n_rows, k, figsize=(1.3 * k, 1.4 * n_rows), squeeze=False)
            for j in range(k):
                ax = axes[0, j]
                ax.imshow(p.crops[r, j].float().mean(0) if p.crops.shape[2] != 3 else
                          p.crops[r, j].permute(1, 2, 0).clamp(0, 1), cmap="gray")
                ax.set_title(f"{float(p.values[r, j]):.2f}", fontsize=8)
                ax.axis("off")
                if images is not None:
                    img = images[int(p.indices[r, j])]
                    t, l, b, rr = p.rf.box(*p.positions[r, j].tolist())
                    ax2 = axes[1, j]
                    ax2.imshow(img.float().mean(0) if img.shape[0] != 3 else img.permute(1, 2, 0), cmap="gray")
                    ax2.add_patch(plt.Rectangle((l - 0.5, t - 0.5), rr - l, b - t, fill=False, color="red", lw=1))
                    ax2.set_xlim(-0.5, img.shape[-1] - 0.5)
                    ax2.set_ylim(img.shape[-2] - 0.5, -0.5)
                    ax2.axis("off")
            fig.suptitle(f"{layer.value}, channel {p.channels[r]}: top-{k} patches (response above each)",
                         fontsize=9)
            plt.show()

    layer.observe(draw, "value")
    channel.observe(draw, "value")
    draw()
    return w.VBox([w.HBox([layer, channel]), out])


def patches_explorer(patches: Mapping[str, Patches], images: torch.Tensor | None = None, live: bool = False,
                     channels: int | Mapping[str, Sequence[int]] = 8):
    """An ipywidgets explorer of the top patches of several layers (``{label: Patches}``).

    ``live=False`` (default): the static form, a slider over the layers and one precomputed
    image each (works in the rendered book). ``live=True``: a layer menu and a channel slider
    redrawn by the kernel; with ``images`` (the ``(N, C, H, W)`` data the patches came from) it
    also shows each patch's window in its image.
    """
    if not patches:
        raise ValueError("patches is empty: pass {label: top_activating_patches(...)} for at least one layer")
    if live:
        return _live(patches, images)
    frames, labels = patches_frames(patches, channels)
    return static_frames(frames, labels, description="layer")
