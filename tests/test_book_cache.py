"""scripts/build-book.sh keys the execution cache on src/convnets: jupyter-cache only notices a
change in a chapter's own cells, so an edit of the library must re-execute every chapter, and
nothing else may. Checked on a copy of the script with stand-ins for set-up and sphinx-build."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the build script on a copy of the project

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "build-book.sh", proj / "scripts" / "build-book.sh")
    shutil.copy(ROOT / "scripts" / "book-cache-key.sh", proj / "scripts" / "book-cache-key.sh")
    (proj / "scripts" / "setup.sh").write_text("exit 0\n")
    (proj / "scripts" / "execute_chapters.py").write_text("")  # stand-in: the fake build executes
    (proj / "scripts" / "sphinx_conf.py").write_text("")
    bin_ = proj / ".venv" / "bin"
    bin_.mkdir(parents=True)
    fake = bin_ / "sphinx-build"
    # the stand-in "executes" only when the cache is empty, as jupyter-cache would, and writes
    # its output folder (the last argument)
    fake.write_text('#!/bin/sh\nfor a; do out=$a; done\nmkdir -p "$out"\n'
                    "if [ -f _build/.jupyter_cache/executed ]; then echo reused; "
                    "else mkdir -p _build/.jupyter_cache && touch _build/.jupyter_cache/executed && echo executed; fi\n")
    fake.chmod(0o755)
    (proj / "src" / "convnets").mkdir(parents=True)
    (proj / "src" / "convnets" / "a.py").write_text("x = 1\n")
    return proj


def _build(proj: Path) -> str:
    proc = subprocess.run(["bash", "scripts/build-book.sh"], cwd=proj, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{proj / '.venv' / 'bin'}:{os.environ['PATH']}",
                               "BOOK_LANGUAGES": "en"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_library_change_reexecutes_and_nothing_else_does(tmp_path):
    proj = _project(tmp_path)
    assert "executed" in _build(proj).split()
    assert "reused" in _build(proj).split(), "a rebuild with nothing changed must reuse the cache"
    (proj / "book").mkdir()
    (proj / "book" / "notes.md").write_text("a change outside src/convnets\n")
    assert "reused" in _build(proj).split()
    (proj / "src" / "convnets" / "a.py").write_text("x = 2\n")
    out = _build(proj)
    assert "executed" in out.split() and "src/convnets or results/ changed" in out, out
    (proj / "src" / "convnets" / "sub").mkdir()
    (proj / "src" / "convnets" / "sub" / "b.py").write_text("y = 1\n")
    assert "executed" in _build(proj).split(), "a new module in src/convnets must re-execute the chapters"
    assert "reused" in _build(proj).split()


def test_changed_cached_results_reexecute(tmp_path):
    """The chapters read results/*.json: a recomputed experiment must show in the next build."""
    proj = _project(tmp_path)
    (proj / "results").mkdir()
    (proj / "results" / "x.json").write_text('{"acc": 0.9}')
    assert "executed" in _build(proj).split()
    assert "reused" in _build(proj).split()
    (proj / "results" / "x.json").write_text('{"acc": 0.8}')
    assert "executed" in _build(proj).split(), "a changed results/ file must re-execute the chapters"


def test_an_edition_rendered_from_older_executions_is_reread(tmp_path):
    """Sphinx re-reads a page when its source changes, not when its notebook was executed again:
    when the execution cache's records change, each edition is rendered with -E (both editions
    must show the same, current outputs); with nothing changed it is not."""
    proj = _project(tmp_path)
    (proj / "scripts" / "execute_chapters.py").write_text(
        "import pathlib\npathlib.Path('_build').mkdir(exist_ok=True)\n"
        "pathlib.Path('_build/.cache-state').write_text(pathlib.Path('state').read_text())\n")
    fake = proj / ".venv" / "bin" / "sphinx-build"
    fake.write_text(fake.read_text() + 'case " $* " in *" -E "*) echo reread;; esac\n')
    (proj / "state").write_text("records 1\n")
    assert "reread" in _build(proj).split()
    assert "reread" not in _build(proj).split(), "nothing changed: no full re-read"
    (proj / "state").write_text("records 2\n")
    assert "reread" in _build(proj).split(), "new executions: the edition must be re-read"
