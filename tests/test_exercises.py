"""The exercise pipeline, end to end, for every assignment in solutions/.

For each assignment, in a temporary copy of the course:

- regenerating the student version with ``nbgrader generate_assignment`` gives exactly the
  committed ``exercises/<assignment>/`` files;
- the instructor's notebook, submitted as a student's, autogrades to full marks;
- the released notebook, submitted untouched, scores zero on every autograded test;
- no solution or hidden test appears in ``exercises/``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
BIN = Path(sys.executable).parent
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(course), "PYTHONWARNINGS": "ignore",
           "JUPYTER_PLATFORM_DIRS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([str(BIN / "nbgrader"), *args, f"--CourseDirectory.root={course}"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_course(tmp: Path, assignment: str) -> Path:
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    return course


def cells_of(path: Path) -> list[dict]:
    nb = json.loads(path.read_text())
    return [{"type": c["cell_type"], "source": "".join(c["source"]), "nbgrader": c.get("metadata", {}).get("nbgrader")}
            for c in nb["cells"]]


def test_there_are_assignments():
    assert "00-warmup" in ASSIGNMENTS, f"expected at least the warm-up assignment; found {ASSIGNMENTS}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_in_exercises(assignment):
    released = ROOT / "exercises" / assignment
    assert released.is_dir(), f"exercises/{assignment} is missing: run bash scripts/release-exercise.sh {assignment}"
    for nb in released.rglob("*.ipynb"):
        text = nb.read_text()
        for marker in MARKERS:
            assert marker not in text, f"{nb.relative_to(ROOT)} contains {marker!r}"


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """A temporary course where the assignment was released and two students submitted:
    'perfect' (the instructor's notebook) and 'untouched' (the released notebook)."""
    assignment = request.param
    course = make_course(tmp_path_factory.mktemp(assignment), assignment)
    nbgrader(course, "generate_assignment", assignment, "--force")
    for student, src in (("perfect", course / "solutions" / assignment),
                         ("untouched", course / "exercises" / assignment)):
        dest = course / "submitted" / student / assignment
        dest.parent.mkdir(parents=True)
        shutil.copytree(src, dest)
    nbgrader(course, "autograde", assignment, "--force")
    sys.path.insert(0, str(BIN.parent))
    from nbgrader.api import Gradebook

    gb = Gradebook(f"sqlite:///{course / 'gradebook.db'}")
    try:
        scores = {}
        for student in ("perfect", "untouched"):
            sub = gb.find_submission(assignment, student)
            scores[student] = {
                "score": sub.score,
                "max_score": sub.max_score,
                "tests": {g.name: (g.score, g.max_score) for nb in sub.notebooks for g in nb.grades},
            }
    finally:
        gb.close()
    return assignment, course, scores


@pytest.mark.slow
def test_release_matches_committed(graded):
    assignment, course, _ = graded
    fresh = course / "exercises" / assignment
    committed = ROOT / "exercises" / assignment
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    committed_files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert fresh_files == committed_files, (
        f"exercises/{assignment} holds {committed_files}, a fresh release {fresh_files}: "
        f"run bash scripts/release-exercise.sh {assignment} and commit")
    for rel in fresh_files:
        if rel.suffix == ".ipynb":
            assert cells_of(fresh / rel) == cells_of(committed / rel), (
                f"exercises/{assignment}/{rel} is stale: run bash scripts/release-exercise.sh {assignment}")
        else:
            assert (fresh / rel).read_bytes() == (committed / rel).read_bytes(), f"exercises/{assignment}/{rel} is stale"


@pytest.mark.slow
def test_solution_gets_full_marks(graded):
    assignment, _, scores = graded
    s = scores["perfect"]
    assert s["max_score"] > 0, f"{assignment} has no autograded points"
    lost = {k: v for k, v in s["tests"].items() if v[1] and v[0] != v[1]}
    assert s["score"] == s["max_score"] and not lost, f"{assignment}: the solution lost points in {lost}"


@pytest.mark.slow
def test_release_scores_zero(graded):
    assignment, _, scores = graded
    s = scores["untouched"]
    scored = {k: v for k, v in s["tests"].items() if v[1] and v[0]}
    assert s["score"] == 0 and not scored, f"{assignment}: the untouched release scores points in {scored}"
