"""The library outside the repository: a wheel with the cached results, the set-up cell that
installs it on Colab or a fresh Jupyter, and notebooks that run in an empty folder."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import setup_cell  # noqa: E402

CHAPTER = "02-normalization"   # reads cached results (results/normalization.json)
ASSIGNMENT = "00-warmup"


def test_every_notebook_starts_with_the_setup_cell():
    """The chapters and the solutions carry the current set-up cell (scripts/setup_cell.py),
    first; the paired notebooks and the releases carry it too, locked in the releases."""
    assert setup_cell.main(["--check"]) == 0, "run python scripts/setup_cell.py (then sync and release)"
    src = setup_cell.cell_source()
    chapters, solutions = setup_cell.targets()
    assert len(chapters) >= 8 and len(solutions) >= 8
    for md in chapters:
        nb = json.loads(md.with_suffix(".ipynb").read_text(encoding="utf-8"))
        first = nb["cells"][0]
        assert "".join(first["source"]) == src, f"{md.with_suffix('.ipynb').name}: stale set-up cell (sync-notebooks.sh)"
        assert "remove-cell" in first["metadata"].get("tags", []), "the set-up cell is hidden in the book"
    for sol in solutions:
        rel = ROOT / "exercises" / sol.parent.name / sol.name
        first = json.loads(rel.read_text(encoding="utf-8"))["cells"][0]
        assert "".join(first["source"]) == src, f"{rel}: stale set-up cell (release-exercise.sh)"
        assert first["metadata"]["nbgrader"]["locked"] is True


def test_install_source_comes_from_the_book_config(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("sphinx:\n  config:\n    companion_repository_url: https://github.com/hse/convnets-book.git\n"
                   "    companion_branch: spring\n")
    assert setup_cell.install_source(cfg) == "git+https://github.com/hse/convnets-book@spring"
    cfg.write_text("sphinx:\n  config:\n    companion_repository_url: ''\n")
    assert setup_cell.install_source(cfg) == ""
    assert "'git+https://x@main'" in setup_cell.cell_source("git+https://x@main")


def test_colab_links_on_every_chapter_when_the_repository_is_set():
    """With companion_repository_url set, each chapter's launch bar links Colab to its paired
    notebook, which exists."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import companion

    class Cfg:
        companion_repository_url = "https://github.com/hse/convnets-book"
        companion_branch = "main"
        companion_exercises: dict = {}
        companion_languages = ["ru", "en"]
        language = "en"

    class App:
        config = Cfg()
        srcdir = str(ROOT)

    chapters, _ = setup_cell.targets()
    for md in chapters:
        doc = f"book/{md.stem}"
        bar = companion._bar(App(), doc)
        link = f"https://colab.research.google.com/github/hse/convnets-book/blob/main/{doc}.ipynb"
        assert f'href="{link}">Open in Colab</a>' in bar, (doc, bar)
        assert (ROOT / f"{doc}.ipynb").is_file()
    Cfg.companion_repository_url = ""
    assert "Colab" not in companion._bar(App(), "book/" + chapters[0].stem)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _execute(nb_path: Path, kernel: str, env_extra: dict, allow_errors: bool = False):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    old = {k: os.environ.get(k) for k in env_extra}
    os.environ.update(env_extra)
    try:
        NotebookClient(nb, kernel_name=kernel, timeout=600, allow_errors=allow_errors,
                       resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _errors(nb) -> list[str]:
    return [o["ename"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.slow
def test_wheel_runs_a_chapter_and_an_exercise_outside_the_repository(tmp_path):
    # 1. the wheel, with the cached results inside
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, timeout=600)
    wheel = next(dist.glob("convnets-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for f in (ROOT / "results").glob("*.json"):
        assert f"convnets/results/{f.name}" in names, f"{f.name} is not shipped in the wheel"
    deps = [m.group(1).strip() for m in re.finditer(r"^Requires-Dist: (.+)$", meta, flags=re.M)
            if "extra ==" not in m.group(1)]
    assert any(d.startswith("torch") for d in deps)

    # 2. a fresh environment with the declared dependencies and a kernel, but not convnets:
    #    the notebooks' set-up cell installs it (from the wheel, as it would from the repository)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = _venv_python(venv)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *deps, "ipykernel"], check=True, timeout=1800)
    kernels = tmp_path / "jupyter" / "kernels" / "fresh-convnets"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh convnets", "language": "python",
        "env": {"PYTHONPATH": "", "CONVNETS_RESULTS": "", "MPLBACKEND": "Agg"},
    }))

    # 3. an empty folder outside the repository with one chapter and one assignment
    work = tmp_path / "student"
    work.mkdir()
    shutil.copy(ROOT / "book" / f"{CHAPTER}.ipynb", work)
    shutil.copy(ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", work / "release.ipynb")
    shutil.copy(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", work / "solution.ipynb")
    env = {"JUPYTER_PATH": str(tmp_path / "jupyter"), "CONVNETS_INSTALL_SOURCE": str(wheel)}

    release = _execute(work / "release.ipynb", "fresh-convnets", env, allow_errors=True)
    setup_out = "".join(o.get("text", "") for o in release.cells[0].get("outputs", []))
    assert "Installing the course library convnets" in setup_out, setup_out
    assert not [e for e in _errors(release) if "Import" in e or "NotFound" in e], _errors(release)
    assert _errors(release), "the blank release should fail its visible tests"
    assert set(_errors(release)) <= {"NotImplementedError", "AssertionError"}, _errors(release)

    solution = _execute(work / "solution.ipynb", "fresh-convnets", env)
    assert "Installing" not in "".join(o.get("text", "") for o in solution.cells[0].get("outputs", []))
    chapter = _execute(work / f"{CHAPTER}.ipynb", "fresh-convnets", env)
    assert not _errors(chapter)

    # 4. the installed package reads the same cached numbers as the repository
    out_here = subprocess.run([sys.executable, "-m", "convnets.claims", "--chapter", CHAPTER[:2]],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONVNETS_RESULTS")}
    out_there = subprocess.run([str(py), "-m", "convnets.claims", "--chapter", CHAPTER[:2]],
                               capture_output=True, text=True, cwd=work, env=clean, timeout=600)
    assert out_there.returncode == 0, out_there.stdout[-2000:] + out_there.stderr[-2000:]
    assert out_there.stdout == out_here.stdout
    where = subprocess.run([str(py), "-c", "import convnets; print(convnets.__file__)"],
                           capture_output=True, text=True, cwd=work, env=clean).stdout
    assert str(venv) in where, where


def test_grade_command_without_nbgrader_names_the_extra(monkeypatch, capsys):
    """An installed library without the grading extra: convnets-grade says what to install."""
    monkeypatch.setitem(sys.modules, "nbgrader", None)  # import nbgrader raises ImportError
    from convnets.grading import main

    assert main(["00-warmup", "submissions"]) == 2
    assert "pip install 'convnets[grading]'" in capsys.readouterr().err
