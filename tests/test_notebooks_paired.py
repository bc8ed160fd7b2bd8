"""Every chapter has a paired .ipynb (what Colab and JupyterLab open) with the same cells."""
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md") if "kernelspec:" in p.read_text()[:600])


def cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_an_up_to_date_notebook(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.relative_to(ROOT)} is missing: run bash scripts/sync-notebooks.sh"
    assert cells(jupytext.read(md)) == cells(jupytext.read(ipynb)), (
        f"{ipynb.relative_to(ROOT)} differs from {md.name}: run bash scripts/sync-notebooks.sh and commit")
    outputs = [c for c in jupytext.read(ipynb).cells if c.cell_type == "code" and c.get("outputs")]
    assert not outputs, f"{ipynb.name} should be committed without outputs"


def test_colab_link_points_at_the_notebook():
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from companion import colab_url

    assert colab_url("https://github.com/hse/convnets-book", "main", "book/02-normalization") == (
        "https://colab.research.google.com/github/hse/convnets-book/blob/main/book/02-normalization.ipynb")
    assert colab_url("https://github.com/hse/convnets-book.git", "dev", "book/x") .endswith("/blob/dev/book/x.ipynb")
    assert colab_url("", "main", "book/x") is None
    assert colab_url("https://gitlab.com/a/b", "main", "book/x") is None
