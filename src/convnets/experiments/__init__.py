"""Experiments too slow to run inside a chapter on every build: cache or train.

Each experiment is a module ``convnets.experiments.<name>`` with a function
``run(quick: bool = False) -> dict`` that returns JSON-able results (and may write small
checkpoints under :func:`results_dir`). A chapter calls :func:`load_or_run` to read the saved
results when they are present and to compute (and save) them when they are not;
``CONVNETS_RECOMPUTE=1`` forces a recomputation. From a shell::

    python -m convnets.experiments NAME [--quick]

``--quick`` is a reduced size for tests; quick results are never saved over full ones.

Where results live (:func:`results_dir`), first match wins:

1. the folder named by the environment variable ``CONVNETS_RESULTS`` (created when written to);
2. a ``results/`` folder shipped inside the installed package (``convnets/results``), if present;
3. the ``results/`` folder of the source checkout the package is imported from (``src/convnets``
   under a folder holding ``pyproject.toml``).

Otherwise (an installed package without shipped results) :func:`results_dir` raises
``FileNotFoundError`` that names ``CONVNETS_RESULTS``.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import Any

from ..utils import atomic_write

__all__ = ["ENV_VAR", "results_dir", "load_or_run", "available", "run_experiment"]


ENV_VAR = "CONVNETS_RESULTS"


def results_dir() -> Path:
    """The results folder: ``$CONVNETS_RESULTS``, else the package's shipped ``results/``, else
    the source checkout's ``results/`` (see the module's docstring); ``FileNotFoundError`` naming
    ``CONVNETS_RESULTS`` when there is none."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    package = Path(__file__).resolve().parents[1]  # .../convnets
    shipped = package / "results"
    if shipped.is_dir():
        return shipped
    src = package.parent
    if src.name == "src" and (src.parent / "pyproject.toml").is_file():
        return src.parent / "results"  # a source checkout (editable install or PYTHONPATH=src)
    raise FileNotFoundError(
        f"no results folder: convnets is imported from {package}, which ships no results/ and is not "
        f"in a source checkout; set the environment variable {ENV_VAR} to a folder for the results "
        f"(e.g. export {ENV_VAR}=$PWD/results)"
    )


def available() -> list[str]:
    """Names of the experiments (modules of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _module(name: str):
    if name not in available():
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(available()) or 'none'}")
    return importlib.import_module(f"{__name__}.{name}")


def run_experiment(name: str, quick: bool = False, save: bool = True) -> dict[str, Any]:
    """Run experiment ``name`` now; save its results to ``results/<name>.json`` (full size only)."""
    result = _module(name).run(quick=quick)
    if save and not quick:
        atomic_write(results_dir() / f"{name}.json", json.dumps(result, indent=1, sort_keys=True))
    return result


def load_or_run(name: str) -> dict[str, Any]:
    """The saved results of experiment ``name``, computing them first when they are missing
    (or when ``CONVNETS_RECOMPUTE=1``)."""
    path = results_dir() / f"{name}.json"
    if path.is_file() and os.environ.get("CONVNETS_RECOMPUTE", "") not in ("1", "true", "yes"):
        return json.loads(path.read_text())
    return run_experiment(name)
