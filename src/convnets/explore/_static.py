"""The static form of an explorer: precomputed frames switched by a slider on the client.

A rendered book page has no kernel, so ``interact`` callbacks do nothing there. Instead each
explorer precomputes its frames as PNGs and shows them in an :class:`ipywidgets.Stack` whose
``selected_index`` is linked *in the browser* (``ipywidgets.jslink``) to a selection slider.
myst-nb embeds the widget state in the page, so the slider works offline.
"""
from __future__ import annotations

import io
from typing import Sequence

__all__ = ["fig_to_png", "static_frames"]


def fig_to_png(fig, dpi: int = 72, close: bool = True) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards unless ``close=False``)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buf.getvalue()


def static_frames(frames: Sequence[bytes], labels: Sequence[str], description: str = "show"):
    """A slider over ``labels`` and a stack of PNG ``frames``, linked on the client.

    Returns an ``ipywidgets.VBox``; display it as a cell's last expression.
    """
    import ipywidgets as w

    if len(frames) != len(labels) or not frames:
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} frames, {len(labels)} labels")
    images = [w.Image(value=png, format="png") for png in frames]
    stack = w.Stack(images, selected_index=0)
    slider = w.SelectionSlider(options=list(labels), value=labels[0], description=description,
                               continuous_update=True, layout=w.Layout(width="500px"),
                               style={"description_width": "initial"})
    w.jslink((slider, "index"), (stack, "selected_index"))
    return w.VBox([slider, stack])
