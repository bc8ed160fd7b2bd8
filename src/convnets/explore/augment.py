"""Augmentation composer: pick an image, switch transforms on, see a grid of random results.

Explained in the chapter "Data augmentation" (``book/04-augmentation.md``).

Two forms, as every explorer of :mod:`convnets.explore`:

- :func:`composer` with ``live=True`` (Jupyter, with a kernel): a form with one checkbox and
  one strength slider per transform, an image menu and a seed; every change redraws a grid of
  augmented copies of the image;
- the static form (default; works in the rendered book without a kernel): a set of preset
  compositions, each precomputed as one PNG, switched by a slider in the browser.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from ._static import fig_to_png, static_frames

__all__ = ["STEPS", "build", "augment_grid", "PRESETS", "composer_frames", "composer"]


def _affine(s: float):
    from torchvision.transforms import v2

    return v2.RandomAffine(degrees=30 * s, translate=(0.2 * s, 0.2 * s), scale=(1 - 0.3 * s, 1 + 0.3 * s))


def _rotate(s: float):
    from torchvision.transforms import v2

    return v2.RandomRotation(180 * s)


def _flip(s: float):
    from torchvision.transforms import v2

    return v2.RandomHorizontalFlip(p=s)


def _crop(s: float):
    from torchvision.transforms import v2

    def f(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return v2.RandomResizedCrop((h, w), scale=(1 - 0.85 * s, 1.0), antialias=True)(x)

    return f


def _jitter(s: float):
    from torchvision.transforms import v2

    return v2.ColorJitter(brightness=0.8 * s, contrast=0.8 * s, saturation=s, hue=0.15 * s)


def _blur(s: float):
    from torchvision.transforms import v2

    return v2.GaussianBlur(21, sigma=(0.1 + 4 * s, 0.1 + 4 * s))


def _elastic(s: float):
    from torchvision.transforms import v2

    def f(x: torch.Tensor) -> torch.Tensor:
        side = min(x.shape[-2:])
        return v2.ElasticTransform(alpha=side * 1.5 * s, sigma=side / 7)(x)

    return f


def _erase(s: float):
    from torchvision.transforms import v2

    return v2.RandomErasing(p=1.0, scale=(0.02, 0.02 + 0.3 * s), value=0)


#: The composer's steps in the order they are applied: ``name -> (strength in [0, 1]) -> transform``.
STEPS: dict[str, Callable[[float], Callable]] = {
    "crop": _crop, "flip": _flip, "affine": _affine, "rotate": _rotate, "elastic": _elastic,
    "jitter": _jitter, "blur": _blur, "erase": _erase,
}


def build(settings: Mapping[str, float]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A per-image transform from ``{step: strength}`` (steps of :data:`STEPS`, strength in
    ``(0, 1]``; steps absent or at 0 are off), applied in :data:`STEPS` order."""
    from torchvision.transforms import v2

    unknown = set(settings) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown step(s) {sorted(unknown)}; choose from {list(STEPS)}")
    for k, s in settings.items():
        if not 0 <= s <= 1:
            raise ValueError(f"strength of {k!r} must lie in [0, 1]; got {s}")
    steps = [STEPS[k](settings[k]) for k in STEPS if settings.get(k, 0) > 0]
    return v2.Compose(steps) if steps else (lambda x: x)


def augment_grid(image: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor], n: int = 8,
                 seed: int = 0, title: str | None = None, ncols: int = 4, size: float = 1.6):
    """A matplotlib figure: the original ``image`` ``(C, H, W)`` in ``[0, 1]`` and ``n`` augmented
    copies (``torch.manual_seed(seed)`` first, so the grid is reproducible)."""
    import matplotlib.pyplot as plt

    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with 1 or 3 channels; got {tuple(image.shape)}")
    torch.manual_seed(seed)
    outs = [image] + [transform(image.clone()).clamp(0, 1) for _ in range(n)]
    nrows = -(-len(outs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(outs):
            im = outs[i]
            ax.imshow(im[0] if im.shape[0] == 1 else im.permute(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            ax.set_title("original" if i == 0 else f"#{i}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


#: Preset compositions for the static form: ``label -> (image kind, settings)``.
PRESETS: dict[str, tuple[str, dict[str, float]]] = {
    "photo: crop + flip": ("photo", {"crop": 0.6, "flip": 0.5}),
    "photo: crop + flip + jitter": ("photo", {"crop": 0.6, "flip": 0.5, "jitter": 0.5}),
    "photo: rotate + blur": ("photo", {"rotate": 0.15, "blur": 0.4}),
    "photo: everything": ("photo", {"crop": 0.5, "flip": 0.5, "affine": 0.3, "jitter": 0.4, "blur": 0.2, "erase": 0.4}),
    "digit: affine": ("digit", {"affine": 0.35}),
    "digit: affine + elastic": ("digit", {"affine": 0.35, "elastic": 0.5}),
    "digit: affine + erase": ("digit", {"affine": 0.35, "erase": 0.4}),
    "digit: flip + rotate (breaks labels)": ("digit", {"flip": 0.5, "rotate": 1.0}),
}


def composer_frames(photo: torch.Tensor, digit: torch.Tensor, presets: Mapping[str, tuple[str, dict[str, float]]] | None = None,
                    n: int = 7, seed: int = 0, dpi: int = 60) -> tuple[list[bytes], list[str]]:
    """One PNG per preset (``photo`` or ``digit`` as the image, ``(C, H, W)`` in [0, 1]) and its label."""
    presets = PRESETS if presets is None else presets
    frames, labels = [], []
    for label, (kind, settings) in presets.items():
        image = photo if kind == "photo" else digit
        frames.append(fig_to_png(augment_grid(image, build(settings), n=n, seed=seed, title=label,
                                              size=1.3 if kind == "photo" else 1.0), dpi=dpi))
        labels.append(label)
    return frames, labels


def _live(images: Mapping[str, torch.Tensor], n: int):
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    names = list(images)
    image = w.Dropdown(options=names, value=names[0], description="image")
    seed = w.IntSlider(min=0, max=99, value=0, description="seed")
    toggles = {k: w.Checkbox(value=k in ("crop", "flip"), description=k, indent=False,
                             layout=w.Layout(width="90px")) for k in STEPS}
    strengths = {k: w.FloatSlider(min=0.05, max=1.0, step=0.05, value=0.5, description="strength",
                                  readout_format=".2f", layout=w.Layout(width="320px")) for k in STEPS}
    out = w.Output()

    def draw(*_):
        settings = {k: strengths[k].value for k in STEPS if toggles[k].value}
        with out:
            out.clear_output(wait=True)
            fig = augment_grid(images[image.value], build(settings), n=n, seed=seed.value,
                               title=" + ".join(f"{k} {v:.2f}" for k, v in settings.items()) or "no augmentation")
            display(fig)
            plt.close(fig)

    for wid in [image, seed, *toggles.values(), *strengths.values()]:
        wid.observe(draw, names="value")
    draw()
    rows = [w.HBox([toggles[k], strengths[k]]) for k in STEPS]
    return w.HBox([w.VBox([image, seed, *rows]), out])


def composer(images: Mapping[str, torch.Tensor] | None = None, live: bool = False, n: int = 7,
             presets: Mapping[str, tuple[str, dict[str, float]]] | None = None):
    """The augmentation composer.

    ``images``: ``{name: (C, H, W) in [0, 1]}``; by default scikit-image's astronaut and chelsea
    (resized to 128 px) and the first MNIST-5k test digit of classes 4 and 6.
    ``live=True``: the interactive form (needs a kernel); otherwise the static form over
    ``presets`` (default :data:`PRESETS`, shown on the first photo and the first digit).
    Returns an ipywidgets box; display it as a cell's last expression.
    """
    if images is None:
        from ..data import mnist5k, photos

        pics = photos(("astronaut", "chelsea"), size=128)
        d = mnist5k()
        images = {**pics}
        for c in (4, 6):
            images[f"digit {c}"] = d.X_test[int((d.y_test == c).nonzero()[0])]
    if not images:
        raise ValueError("give at least one image")
    if live:
        return _live(images, n)
    photo = next((v for v in images.values() if v.shape[0] == 3), None)
    digit = next((v for v in images.values() if v.shape[0] == 1), None)
    presets = PRESETS if presets is None else presets
    kinds = {kind for kind, _ in presets.values()}
    if ("photo" in kinds and photo is None) or ("digit" in kinds and digit is None):
        raise ValueError("the presets need a colour photo (3, H, W) and a digit (1, H, W) among the images")
    frames, labels = composer_frames(photo, digit, presets, n=n)
    return static_frames(frames, labels, description="composition")
