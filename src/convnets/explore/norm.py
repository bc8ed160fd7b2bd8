"""Explorer and figures for the normalization chapter (``book/02-normalization.md``).

- :func:`plot_norm_axes`: which axes of an ``(N, C, H, W)`` tensor batch, layer, instance and
  group norm average over (one shaded block = one mean and one variance).
- :func:`norm_activations`: the inputs and outputs of every normalization layer of a net on a batch.
- :func:`histogram_figure`: histograms of one layer's activations before and after normalization.
- :func:`histogram_explorer`: the live form (ipywidgets callbacks; needs a kernel, as in Jupyter).
- :func:`static_histogram_explorer`: the static form (precomputed PNG frames switched by a slider
  in the browser), which also works in the rendered book.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._static import fig_to_png, static_frames

__all__ = ["plot_norm_axes", "norm_activations", "histogram_figure", "histogram_explorer",
           "static_histogram_explorer", "NORM_TYPES"]


def _norm_types() -> tuple[type, ...]:
    from .. import norm

    return (norm.BatchNorm1d, norm.BatchNorm2d, norm.LayerNorm, norm.ScalarLayerNorm,
            nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)


NORM_TYPES = _norm_types()


# --------------------------------------------------------------------------- the axes picture


def _cube(ax, origin, size, color, alpha, edge="k", lw=0.6):
    """A box drawn in an oblique projection: x to the right (C), y up (H*W), depth (N) up-right."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Polygon

    x0, y0, z0 = origin
    dx, dy, dz = size
    k = 0.5  # oblique factor for the depth axis

    def p(x, y, z):
        return (x + k * z, y + k * z)

    faces = [
        [p(x0, y0, z0), p(x0 + dx, y0, z0), p(x0 + dx, y0 + dy, z0), p(x0, y0 + dy, z0)],  # front
        [p(x0, y0 + dy, z0), p(x0 + dx, y0 + dy, z0), p(x0 + dx, y0 + dy, z0 + dz), p(x0, y0 + dy, z0 + dz)],  # top
        [p(x0 + dx, y0, z0), p(x0 + dx, y0, z0 + dz), p(x0 + dx, y0 + dy, z0 + dz), p(x0 + dx, y0 + dy, z0)],  # side
    ]
    shades = (1.0, 0.8, 0.6)
    for f, s in zip(faces, shades):
        c = np.clip(np.array(to_rgb(color)) * s, 0, 1)
        ax.add_patch(Polygon(f, closed=True, facecolor=c, alpha=alpha, edgecolor=edge, linewidth=lw))


def plot_norm_axes(N: int = 6, C: int = 6, HW: int = 4, groups: int = 2, axes=None):
    """Four panels in the style of Wu & He (2018, Fig. 2): the tensor ``(N, C, H*W)`` as a box,
    with the elements that share one mean and one variance shaded, for batch norm (one channel,
    every example and position), layer norm (one example, every channel and position), instance
    norm (one example, one channel) and group norm (one example, one group of channels).
    Returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(11, 3.0))
    blocks = {
        "Batch norm": (2, 1, 0, N),     # (c0, nc, n0, nn): channel 2, all examples
        "Layer norm": (0, C, 0, 1),     # example 0, all channels
        "Instance norm": (2, 1, 0, 1),  # example 0, channel 2
        "Group norm": (0, C // groups, 0, 1),
    }
    for ax, (title, (c0, nc, n0, nn_)) in zip(axes, blocks.items()):
        # back (last example) to front, left to right: each cube hides the ones behind it
        for n in reversed(range(N)):
            for c in range(C):
                shaded = n0 <= n < n0 + nn_ and c0 <= c < c0 + nc
                _cube(ax, (c, 0, n), (1, HW, 1), "tab:blue" if shaded else "#eeeeee", 1.0,
                      edge="k" if shaded else "#aaaaaa", lw=0.4)
        ax.set_xlim(-0.8, C + 0.5 * N + 0.5)
        ax.set_ylim(-1.2, HW + 0.5 * N + 0.5)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        ax.annotate("C", (C / 2, -0.9), ha="center", fontsize=9)
        ax.annotate("H, W", (-0.7, HW / 2), ha="center", va="center", rotation=90, fontsize=9)
        ax.annotate("N", (C + 0.25 * N + 0.5, 0.25 * N - 0.4), fontsize=9)
    return axes


# --------------------------------------------------------------------------- histograms


@torch.no_grad()
def norm_activations(net: nn.Module, X: torch.Tensor, train_mode: bool = False) -> list[dict]:
    """Run ``net`` on a batch ``X (N, C, H, W)`` and return, for every normalization layer in
    order, ``{"name", "type", "before", "after"}`` with the layer's input and output tensors
    (on the CPU). ``train_mode=True`` runs in training mode (batch statistics) on a copy of the
    net, so the original's running statistics do not change. The net's mode is restored."""
    import copy

    if not isinstance(X, torch.Tensor) or X.ndim < 2:
        raise TypeError(f"X must be a batch tensor (N, C, H, W); got {type(X).__name__}")
    model = copy.deepcopy(net) if train_mode else net
    was_training = model.training
    model.train(train_mode)
    records: list[dict] = []
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, NORM_TYPES):
            def hook(m, inp, out, name=name):
                # clones: the ReLU(inplace=True) that follows would overwrite the output
                records.append({"name": name, "type": type(m).__name__,
                                "before": inp[0].detach().cpu().clone(), "after": out.detach().cpu().clone()})
            hooks.append(mod.register_forward_hook(hook))
    if not hooks:
        raise ValueError("the net has no normalization layer (BatchNorm, LayerNorm, GroupNorm) to look at")
    try:
        model(X)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return records


def histogram_figure(record: dict, channels: Sequence[int] = (0, 1, 2), bins: int = 50,
                     title: str | None = None, figsize=(7.0, 2.4)):
    """Histograms of one normalization layer's input (left) and output (right) over a batch:
    the values of each channel in ``channels`` drawn separately, with their mean and std in
    the legend. ``record`` is one item of :func:`norm_activations`. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=figsize, constrained_layout=True)
    for ax, key, label in ((axes[0], "before", "before (conv output)"), (axes[1], "after", "after normalization")):
        t = record[key]
        if t.ndim < 2:
            raise ValueError(f"expected activations (N, C, ...); got shape {tuple(t.shape)}")
        chans = [c for c in channels if c < t.shape[1]]
        lo = min(float(t[:, c].min()) for c in chans)
        hi = max(float(t[:, c].max()) for c in chans)
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
        for c in chans:
            v = t[:, c].flatten().double()
            ax.hist(v.numpy(), bins=edges, histtype="stepfilled", alpha=0.45,
                    label=f"ch {c}: mean {v.mean():+.3g}, std {v.std():.3g}")
        ax.set_title(label, fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    fig.suptitle(title or f"{record['name']} ({record['type']})", fontsize=10)
    return fig


def histogram_explorer(nets: dict[str, nn.Module], X: torch.Tensor, channels: Sequence[int] = (0, 1, 2)):
    """The live explorer (Jupyter, with a kernel): pick a net (e.g. ``{"at initialization": net0,
    "after training": net1}``), a normalization layer, train or eval mode and the channels, and
    see the histograms of that layer's activations on the batch ``X`` before and after
    normalization. Returns an ``ipywidgets.VBox``."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    if not nets:
        raise ValueError("pass at least one net, e.g. {'after training': net}")
    names = list(nets)
    n_layers = len(norm_activations(nets[names[0]], X[:2]))
    net_w = w.Dropdown(options=names, value=names[0], description="net")
    layer_w = w.IntSlider(min=1, max=n_layers, value=1, description="norm layer")
    mode_w = w.ToggleButtons(options=["eval", "train"], value="eval", description="mode")
    chan_w = w.Text(value=", ".join(str(c) for c in channels), description="channels")
    out = w.Output()
    cache: dict = {}

    def update(*_):
        key = (net_w.value, mode_w.value)
        if key not in cache:
            cache[key] = norm_activations(nets[net_w.value], X, train_mode=mode_w.value == "train")
        try:
            chans = [int(c) for c in chan_w.value.replace(" ", "").split(",") if c != ""]
        except ValueError:
            chans = list(channels)
        rec = cache[key][layer_w.value - 1]
        with out:
            out.clear_output(wait=True)
            fig = histogram_figure(rec, chans or [0],
                                   title=f"{net_w.value}, layer {layer_w.value}: {rec['name']} ({mode_w.value} mode)")
            display(fig)
            plt.close(fig)

    for wd in (net_w, layer_w, mode_w, chan_w):
        wd.observe(update, names="value")
    update()
    return w.VBox([w.HBox([net_w, mode_w]), w.HBox([layer_w, chan_w]), out])


def static_histogram_explorer(nets: dict[str, nn.Module | tuple[nn.Module, bool]], X: torch.Tensor,
                              layers: Sequence[int] | None = None, channels: Sequence[int] = (0, 1, 2),
                              dpi: int = 45):
    """The static explorer: one precomputed PNG per (net, layer), switched by a slider on the
    client, so it works in the rendered book without a kernel.

    ``nets`` maps a label to a net (run in eval mode) or to ``(net, train_mode)``;
    ``layers`` are 1-based indices of the normalization layers to show (default: all).
    Returns ``(widget, total_png_bytes)``.
    """
    import matplotlib.pyplot as plt

    if not nets:
        raise ValueError("pass at least one net, e.g. {'after training': net}")
    frames, labels = [], []
    for net_name, entry in nets.items():
        net, train_mode = entry if isinstance(entry, tuple) else (entry, False)
        recs = norm_activations(net, X, train_mode=train_mode)
        idx = list(range(1, len(recs) + 1)) if layers is None else list(layers)
        bad = [i for i in idx if not 1 <= i <= len(recs)]
        if bad:
            raise ValueError(f"layers {bad} out of range: the net has {len(recs)} normalization layers")
        for i in idx:
            rec = recs[i - 1]
            fig = histogram_figure(rec, channels, title=f"{net_name}: norm layer {i} ({rec['name']})",
                                   figsize=(7.0, 2.2))
            frames.append(fig_to_png(fig, dpi=dpi))
            labels.append(f"{net_name}, layer {i}")
            plt.close(fig)
    return static_frames(frames, labels, description="net, layer"), sum(len(f) for f in frames)
