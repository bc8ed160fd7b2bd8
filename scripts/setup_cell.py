"""The first cell of every chapter and every assignment: install the course library where it is
missing (Colab, a fresh Jupyter), do nothing where it is present (a clone, the book build, the
grader's sandbox).

The install source is set once, in ``_config.yml`` (``sphinx.config.companion_repository_url``
and ``companion_branch``, also used for the "Open in Colab" links); ``CONVNETS_INSTALL_SOURCE``
overrides it when the notebook runs (a wheel, a fork, a local path).

    python scripts/setup_cell.py          # write the cell into book/*.md and solutions/*/*.ipynb
    python scripts/setup_cell.py --check  # exit 1 when a notebook's cell is missing or stale

After writing, regenerate the paired chapter notebooks (scripts/sync-notebooks.sh) and the
releases (scripts/release-exercise.sh all). tests/test_install.py checks they agree.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MARK = "# Set-up cell of the course companion"
GRADE_ID = "setup_install"


def install_source(config: Path = ROOT / "_config.yml") -> str:
    """``git+<repository>@<branch>`` from the book's configuration ("" when no URL is set)."""
    cfg = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    sc = ((cfg.get("sphinx") or {}).get("config")) or {}
    url = (sc.get("companion_repository_url") or "").strip().rstrip("/")
    if not url:
        return ""
    branch = sc.get("companion_branch") or "main"
    if url.endswith(".git"):
        url = url[:-4]
    return f"git+{url}@{branch}"


def cell_source(source: str | None = None) -> str:
    """The set-up cell's code."""
    source = install_source() if source is None else source
    return "\n".join([
        f"{MARK}: nothing happens where the library `convnets` is installed",
        "# (a clone of the course repository, the book build, the grader). On Colab or a fresh",
        "# Jupyter it installs it; CONVNETS_INSTALL_SOURCE overrides where from.",
        "import importlib.util, os",
        'if importlib.util.find_spec("convnets") is None:',
        f'    _source = os.environ.get("CONVNETS_INSTALL_SOURCE") or {source!r}',
        "    if not _source:",
        "        raise ModuleNotFoundError(",
        '            "этому ноутбуку нужна библиотека курса convnets: установите её из репозитория курса "',
        '            "(pip install <репозиторий или wheel>) или задайте CONVNETS_INSTALL_SOURCE / "',
        '            "this notebook needs the course library convnets: pip install it from the course "',
        '            "repository (pip install <repository or wheel>), or set CONVNETS_INSTALL_SOURCE")',
        '    print(f"Устанавливаю библиотеку курса convnets из {_source} (минута-две) ... / "',
        '          f"Installing the course library convnets from {_source} (a minute or two) ...")',
        "    %pip install --quiet {_source}",
    ])


def _md_cell(src: str) -> str:
    return "```{code-cell} ipython3\n:tags: [remove-cell]\n\n" + src + "\n```\n"


def _split_frontmatter(text: str) -> tuple[str, str]:
    if not text.startswith("---\n"):
        raise ValueError("a chapter must start with its jupytext front matter")
    end = text.index("\n---\n", 4) + 5
    return text[:end], text[end:]


def sync_chapter(path: Path, src: str, check: bool) -> bool:
    """Put the set-up cell first in a MyST chapter; True when the file is (or was) up to date."""
    text = path.read_text(encoding="utf-8")
    head, body = _split_frontmatter(text)
    body = body.lstrip("\n")
    if body.startswith("```{code-cell}") and MARK in body.split("```\n", 1)[0] + "```":
        rest = body.split("\n```\n", 1)[1].lstrip("\n")
    else:
        rest = body
    new = head + "\n" + _md_cell(src) + "\n" + rest
    if new == text:
        return True
    if not check:
        path.write_text(new, encoding="utf-8")
    return False


def sync_solution(path: Path, src: str, check: bool) -> bool:
    """Put the set-up cell first in an nbgrader source notebook (locked, never graded)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = {
        "cell_type": "code", "execution_count": None, "id": "setup-install",
        "metadata": {"editable": False, "deletable": False, "tags": ["setup"],
                     "nbgrader": {"grade": False, "grade_id": GRADE_ID, "locked": True,
                                  "schema_version": 3, "solution": False, "task": False}},
        "outputs": [], "source": src.splitlines(keepends=True),
    }
    cells = nb["cells"]
    if cells and cells[0].get("metadata", {}).get("nbgrader", {}).get("grade_id") == GRADE_ID:
        if cells[0] == cell:
            return True
        cells[0] = cell
    else:
        cells.insert(0, cell)
    if not check:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return False


def targets() -> tuple[list[Path], list[Path]]:
    chapters = [p for p in sorted((ROOT / "book").glob("*.md"))
                if "kernelspec:" in p.read_text(encoding="utf-8")[:600]]
    solutions = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    return chapters, solutions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report notebooks whose cell is missing or stale")
    args = ap.parse_args(argv)
    src = cell_source()
    chapters, solutions = targets()
    stale = [p for p in chapters if not sync_chapter(p, src, args.check)]
    stale += [p for p in solutions if not sync_solution(p, src, args.check)]
    for p in stale:
        print(("stale: " if args.check else "updated: ") + str(p.relative_to(ROOT)))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
