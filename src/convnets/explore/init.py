"""The "initialisation scale" explorer of the chapter "Weight initialisation"
(``book/03-initialization.md``, slide «Инициализация весов»).

Every weight of a deep plain ReLU network is drawn with std ``c * sqrt(2 / fan_in)``: ``c = 1`` is
He's initialisation, ``c = sqrt(2)`` the slide's formula ``(2 / sqrt(n)) N(0, 1)``, ``c = 1/sqrt(2)``
what Xavier gives when fan_in = fan_out. The explorer plots the std of each layer's output and of
the gradient there, measured by :func:`convnets.init.probe`, against the layer index.

- :func:`scale_explorer` with ``live=True``: a slider and a network choice that recompute the
  probe on every move (needs a running kernel: Jupyter).
- :func:`scale_explorer` with ``live=False`` (default): precomputed frames, one per value of
  ``c``, switched in the browser; works in the rendered book without a kernel.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..init import init_weights, plain_cnn, plain_mlp, probe
from ._static import fig_to_png, static_frames

__all__ = ["DEFAULT_GAINS", "scale_profile", "plot_scale_profile", "scale_explorer"]

#: The values of ``c`` the static explorer precomputes.
DEFAULT_GAINS: tuple[float, ...] = (0.5, 1 / math.sqrt(2), 0.85, 0.95, 1.0, 1.05, 1.2, math.sqrt(2), 2.0)


def _gain_label(c: float) -> str:
    if math.isclose(c, 1.0):
        return f"{c:.2f} (He)"
    if math.isclose(c, math.sqrt(2)):
        return f"{c:.2f} (slide)"
    if math.isclose(c, 1 / math.sqrt(2)):
        return f"{c:.2f} (Xavier)"
    return f"{c:.2f}"


def _net(kind: str, depth: int, width: int):
    if kind == "mlp":
        return plain_mlp(depth=depth, width=width)
    if kind == "cnn":
        return plain_cnn(depth=depth, width=width)
    raise ValueError(f"kind must be 'mlp' or 'cnn'; got {kind!r}")


def scale_profile(gain: float, X: torch.Tensor, y: torch.Tensor, kind: str = "mlp", depth: int = 30,
                  width: int | None = None, seed: int = 0) -> dict[str, list[float]]:
    """Per-layer ``act_std`` and ``grad_std`` of a plain ReLU net (``kind`` ``"mlp"`` or ``"cnn"``,
    ``depth`` weight layers) whose weights have std ``gain * sqrt(2 / fan_in)``.

    ``X`` is a batch of images ``(N, 1, 28, 28)`` with labels ``y (N,)``; the backward pass starts
    from the cross-entropy against ``y`` (the definition of :func:`convnets.init.probe`). Seeded by
    ``seed``.
    """
    if not gain > 0:
        raise ValueError(f"gain must be positive; got {gain}")
    width = width if width is not None else (256 if kind == "mlp" else 16)
    torch.manual_seed(seed)
    net = _net(kind, depth, width)
    init_weights(net, "he", mode="fan_in", gain=gain, generator=torch.Generator().manual_seed(seed))
    r = probe(net, X, y)
    return {"act_std": r.act_std, "grad_std": r.grad_std}


def plot_scale_profile(profile: dict[str, list[float]], gain: float, reference: dict | None = None,
                       title: str | None = None, figsize: tuple[float, float] = (6.0, 3.2)):
    """The figure of one frame: std of activations and gradients per layer (log scale)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    layers = range(1, len(profile["act_std"]) + 1)
    if reference is not None:
        ax.plot(layers, reference["act_std"], color="0.7", lw=1, ls="--", label="activations, He (c = 1)")
    ax.plot(layers, profile["act_std"], "o-", ms=3, color="C0", label="activations")
    ax.plot(layers, profile["grad_std"], "s-", ms=3, color="C3", label="gradients")
    ax.set_yscale("log")
    ax.set_ylim(1e-10, 1e10)
    ax.set_xlabel("layer")
    ax.set_ylabel("std")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or f"std = {gain:.2f} x sqrt(2 / fan_in)", fontsize=10)
    return fig


def scale_explorer(X: torch.Tensor, y: torch.Tensor, live: bool = False,
                   gains: Sequence[float] = DEFAULT_GAINS, kind: str = "mlp", depth: int = 30,
                   dpi: int = 72):
    """The explorer widget for images ``X (N, 1, 28, 28)`` with labels ``y (N,)``.

    ``live=False``: one precomputed PNG per value in ``gains`` (a 30-layer MLP costs about 0.1 s
    each on a CPU), switched by a slider on the client: works in a static page.
    ``live=True``: a log-scale slider for ``c`` and a choice of MLP or CNN, recomputed by the
    kernel on every change.
    """
    import ipywidgets as w

    if not live:
        ref = scale_profile(1.0, X, y, kind, depth)
        frames, labels = [], []
        for c in gains:
            fig = plot_scale_profile(scale_profile(c, X, y, kind, depth), c, ref)
            frames.append(fig_to_png(fig, dpi=dpi))
            labels.append(_gain_label(c))
        return static_frames(frames, labels, description="c =")

    from IPython.display import display
    import matplotlib.pyplot as plt

    gain = w.FloatLogSlider(value=1.0, base=2, min=-2, max=2, step=0.05, description="c",
                            continuous_update=False, readout_format=".2f")
    net = w.ToggleButtons(options=[("MLP", "mlp"), ("CNN", "cnn")], value=kind, description="network")
    out = w.Output()
    refs: dict[str, dict] = {}

    def draw(*_):
        k = net.value
        if k not in refs:
            refs[k] = scale_profile(1.0, X, y, k, depth)
        prof = scale_profile(gain.value, X, y, k, depth)
        with out:
            out.clear_output(wait=True)
            fig = plot_scale_profile(prof, gain.value, refs[k])
            display(fig)
            plt.close(fig)

    gain.observe(draw, "value")
    net.observe(draw, "value")
    draw()
    return w.VBox([w.HBox([gain, net]), out])
