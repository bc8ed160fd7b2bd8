"""What the chapters need from their notebook surroundings, wherever they run.

:func:`glue` hands a value to the book's text (``{glue:text}`name```) inside the Jupyter Book
build, and does nothing elsewhere, so that a chapter downloaded as a notebook runs in Colab or a
fresh Jupyter without ``myst_nb``. Used by every chapter (``book/*.md``).
"""
from __future__ import annotations

from typing import Any

__all__ = ["glue", "in_book_build"]


def in_book_build() -> bool:
    """True when ``myst_nb`` (the book's executor) is importable."""
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        return False
    return True


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue(name, value, display=display)`` inside the book build, else nothing.

    NumPy and torch scalars are turned into Python numbers first (the build's text roles format
    plain floats; a ``np.float64`` glued as text shows its repr).
    """
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)
