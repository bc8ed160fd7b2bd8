"""Experiments too slow to run inside a chapter on every build: cache or train.

Each experiment is a module ``convnets.experiments.<name>`` with a function
``run(quick: bool = False) -> dict`` that returns JSON-able results (and may write small
checkpoints under :func:`results_dir`). A chapter calls :func:`load_or_run` to read the saved
results when they are present and to compute (and save) them when they are not;
``CONVNETS_RECOMPUTE=1`` forces a recomputation. From a shell::

    python -m convnets.experiments NAME [--quick]

``--quick`` is a reduced size for tests; quick results are never saved over full ones.
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import Any

__all__ = ["results_dir", "load_or_run", "available", "run_experiment"]


def results_dir() -> Path:
    """Where results live: ``$CONVNETS_RESULTS`` or the repository's ``results/`` folder."""
    env = os.environ.get("CONVNETS_RESULTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "results"


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
        path = results_dir() / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return result


def load_or_run(name: str) -> dict[str, Any]:
    """The saved results of experiment ``name``, computing them first when they are missing
    (or when ``CONVNETS_RECOMPUTE=1``)."""
    path = results_dir() / f"{name}.json"
    if path.is_file() and os.environ.get("CONVNETS_RECOMPUTE", "") not in ("1", "true", "yes"):
        return json.loads(path.read_text())
    return run_experiment(name)
