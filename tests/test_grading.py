"""convnets.grading: the instructor's autograder (docs/instructors.md).

The corpus test grades, in one run with ``jobs=2``, every kind of bad submission the issue lists
against a tiny assignment created in a temporary course (a kernel there starts in a second or
two), and asserts each outcome; the isolation cases are asserted refused when this machine
allows isolation (root or user namespaces), and skipped with the reason otherwise. One test
uses the real ``00-warmup`` assignment: a forged equality gets no points. Another compares the
scores with a plain serial ``nbgrader autograde``.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from convnets.grading import parse_size
from convnets.grading import runner as R
from convnets.grading import sandbox
from convnets.grading.collect import Submission, SubmittedFile, collect, pick_notebooks, student_of
from convnets.grading.sanitize import NotANotebook, WrongAssignment, parse, reference_imports, repair

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "SECRET_HIDDEN_7f3a"  # appears only in the hidden tests of the tiny assignment
LEVEL, WHY = sandbox.detect_level()
isolated = pytest.mark.skipif(LEVEL == "none", reason=f"no kernel isolation on this machine: {WHY}")


# --------------------------------------------------------------------------------------------
# the tiny assignment


def _cell(kind: str, source: str, **nbg) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    md = {"grade": False, "locked": False, "solution": False, "schema_version": 3, "task": False}
    md.update(nbg)
    cell.metadata["nbgrader"] = md
    return cell


def tiny_source() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("markdown", "# Tiny\nWrite `add` (2 points) and `mul` (3 points).", grade_id="intro", locked=True),
        _cell("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
              grade_id="add", solution=True),
        _cell("code", "assert add(1, 2) == 3, 'add(1, 2) should be 3'\n### BEGIN HIDDEN TESTS\n"
                      f"# {SECRET}\nassert add(-1, 1) == 0, 'add(-1, 1) should be 0'\n### END HIDDEN TESTS",
              grade_id="test_add", grade=True, locked=True, points=2),
        _cell("code", "def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION",
              grade_id="mul", solution=True),
        _cell("code", "assert mul(2, 3) == 6, 'mul(2, 3) should be 6'\n### BEGIN HIDDEN TESTS\n"
                      f"# {SECRET}\nassert mul(0, 5) == 0, 'mul(0, 5) should be 0'\n### END HIDDEN TESTS",
              grade_id="test_mul", grade=True, locked=True, points=3),
    ]
    return nb


def make_course(tmp: Path) -> Path:
    course = tmp / "course"
    (course / "solutions" / "tiny").mkdir(parents=True)
    nbformat.write(tiny_source(), str(course / "solutions" / "tiny" / "tiny.ipynb"))
    return course


def opts_for(course: Path, subs: Path, out: Path, **kw) -> R.Options:
    base = dict(assignment="tiny", submissions=subs, out=out, course=course, jobs=2, cell_timeout=10,
                timeout=240, memory=parse_size("2G"), max_output_chars=20_000)
    base.update(kw)
    return R.Options(**base)


def solved(release: nbformat.NotebookNode, add: str = "return a + b", mul: str = "return a * b",
           add_prefix: str = "") -> nbformat.NotebookNode:
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "add":
            cell.source = f"{add_prefix}\ndef add(a, b):\n    {add}\n"
        elif gid == "mul":
            cell.source = f"def mul(a, b):\n    {mul}\n"
    return nb


def cells_by_id(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}


# --------------------------------------------------------------------------------------------
# fast unit tests: collection and repair (no kernel)


def test_student_ids_from_paths():
    assert student_of("ann/00-warmup.ipynb", "00-warmup") == "ann"
    assert student_of("Ann Lee_1234_assignsubmission_file_/x.ipynb", "00-warmup") == "Ann_Lee_1234"
    assert student_of("ann_00-warmup.ipynb", "00-warmup") == "ann"
    assert student_of("ann__attempt_2.ipynb", "00-warmup") == "ann"
    assert student_of("00-warmup.ipynb", "00-warmup") is None, "a bare release name has no student"


def test_zip_members_are_never_extracted_by_name(tmp_path):
    z = tmp_path / "lms.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("all/ann/../../../evil/ann.ipynb", "{}")
        zf.writestr("all/bob/tiny.ipynb", "{}")
        zf.writestr("all/__MACOSX/bob/._tiny.ipynb", "junk")
    subs, orphans = collect(z, "tiny")
    assert set(subs) == {"ann", "bob"}, f"'..' parts are dropped, a wrapper folder and __MACOSX skipped; got {set(subs)}"
    assert not (tmp_path.parent / "evil").exists(), "nothing may be written outside"


def test_latest_of_two_submissions_wins():
    old = SubmittedFile("ann/tiny.ipynb", b"1", 1000.0, 1)
    new = SubmittedFile("ann/tiny (1).ipynb", b"2", 2000.0, 1)
    chosen, notes = pick_notebooks(Submission("ann", [old, new]), ["tiny"])
    assert chosen["tiny"] is new and "renamed" in " ".join(notes), f"the latest wins, renamed or not: {notes}"
    newer = SubmittedFile("ann/resubmit/tiny.ipynb", b"3", 3000.0, 1)
    chosen, notes = pick_notebooks(Submission("ann", [old, new, newer]), ["tiny"])
    assert chosen["tiny"] is newer and any("latest" in n for n in notes), f"the latest wins: {notes}"


@pytest.mark.parametrize("data, expected", [
    (b"", "empty"), (b"\xff\xfe\x00garbage", "not text"), (b"{not json", "not valid JSON"),
    (b'{"hello": "world"}', "not a Jupyter notebook"), (b'{"cells": [], "nbformat": 9}', "unsupported nbformat"),
])
def test_unreadable_files_say_why(data, expected):
    with pytest.raises(NotANotebook, match=expected):
        parse(data, len(data))


def test_repair_restores_metadata_and_drops_duplicates():
    release = tiny_source()
    nb = copy.deepcopy(release)
    cells = cells_by_id(nb)
    cells["test_add"].metadata["nbgrader"]["schema_version"] = 99
    cells["test_add"].metadata["nbgrader"]["points"] = 100
    nb.cells.append(copy.deepcopy(cells["test_mul"]))
    fixed, notes = repair(nb, release)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in fixed.cells]
    assert ids.count("test_mul") == 1, f"the duplicated test keeps one graded copy: {ids}"
    assert cells_by_id(fixed)["test_add"].metadata["nbgrader"] == release.cells[2].metadata["nbgrader"]
    other = copy.deepcopy(release)
    for c in other.cells:
        c.metadata["nbgrader"]["grade_id"] = "lenet_" + c.metadata["nbgrader"]["grade_id"]
    with pytest.raises(WrongAssignment):
        repair(other, release)


def test_reference_import_is_flagged():
    nb = solved(tiny_source(), add_prefix="from convnets.train import accuracy")
    assert reference_imports(nb) == ["convnets.train.accuracy"]


# --------------------------------------------------------------------------------------------
# the corpus: every bad case in one run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    course = make_course(tmp)
    subs = tmp / "submissions"
    subs.mkdir()
    out = tmp / "out"
    opts = opts_for(course, subs, out).validated()
    out.mkdir()
    release = R.build_template(opts).notebooks["tiny"]

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    port = server.getsockname()[1]
    outside = tmp / "outside"  # a folder the submissions try to write into
    outside.mkdir()

    def put(student, nb_or_bytes, name="tiny.ipynb", mtime=None):
        d = subs / student
        d.mkdir(exist_ok=True)
        p = d / name
        if isinstance(nb_or_bytes, bytes):
            p.write_bytes(nb_or_bytes)
        else:
            nbformat.write(nb_or_bytes, str(p))
        if mtime:
            os.utime(p, (mtime, mtime))

    put("good", solved(release))
    put("syntax", solved(release, add="return a +"))
    put("exception", solved(release, add_prefix="raise ValueError('boom')"))
    put("loop", solved(release, add_prefix="while True:\n    pass"))
    put("alloc", solved(release, add_prefix="x = bytearray(50 * 2**30)"))
    put("exit", solved(release, add_prefix="import os\nos._exit(3)"))
    put("segfault", solved(release, add_prefix="import ctypes\nctypes.string_at(0)"))
    put("bigprint", solved(release, add_prefix="print('x' * 100_000_000)"))
    nb = solved(release)
    nb.cells = [c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] != "test_add"]
    put("deltest", nb)
    nb = solved(release, add="return 0")
    cells_by_id(nb)["test_add"].source = "pass"
    put("edittest", nb)
    nb = solved(release)
    dup = copy.deepcopy(cells_by_id(nb)["test_mul"])
    dup.id = "duplicated-test"  # the same grade_id; a new cell id keeps nbformat quiet when writing
    nb.cells.append(dup)
    put("duptest", nb)
    nb = solved(release)
    i = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells].index("test_add")
    md_cell = nbformat.v4.new_markdown_cell(nb.cells[i].source)
    md_cell.metadata = nb.cells[i].metadata
    nb.cells[i] = md_cell
    put("retype", nb)
    nb = solved(release)
    cells_by_id(nb)["test_mul"].metadata["nbgrader"].update(schema_version=99, points=100)
    cells_by_id(nb)["add"].metadata["nbgrader"] = "garbage"
    put("badmeta", nb)
    put("renamed", solved(release), name="Copy of tiny (2).ipynb")
    put("empty", nbformat.v4.new_notebook())
    put("garbage", os.urandom(4096))
    put("notnb", b'{"hello": "world"}')
    nb3 = nbformat.convert(solved(release), 3)
    put("oldformat", nbformat.writes(nb3, version=3).encode())
    put("network", solved(release, add_prefix=(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=3)\n"
        "    print('NETWORK: CONNECTED')\nexcept OSError as e:\n    print('NETWORK: REFUSED', e)" % port)))
    sol = (course / "solutions" / "tiny" / "tiny.ipynb").resolve()
    put("readsol", solved(release, add_prefix=(
        "import glob\nfor p in ['../solutions/tiny/tiny.ipynb', '../../../solutions/tiny/tiny.ipynb', %r, %r, %r]"
        " + glob.glob('*.ipynb') + glob.glob('../*/*/*.ipynb'):\n"
        "    try:\n        print('READ', p, open(p, errors='replace').read())\n"
        "    except OSError as e:\n        print('REFUSED', p, type(e).__name__)"
        % (str(sol), str((out / 'gradebook.db').resolve()), str((subs / 'good' / 'tiny.ipynb').resolve())))))
    put("writeout", solved(release, add_prefix=(
        "for p in ['../../pwned.txt', %r, %r]:\n"
        "    try:\n        open(p, 'w').write('pwned')\n        print('WROTE', p)\n"
        "    except OSError as e:\n        print('REFUSED', p, type(e).__name__)"
        % (str((outside / 'pwned.txt').resolve()), str((course / 'pwned.txt').resolve())))))
    other = solved(release)
    for c in other.cells:
        c.metadata["nbgrader"]["grade_id"] = "lenet_" + c.metadata["nbgrader"]["grade_id"]
    put("otherassign", other, name="01-lenet.ipynb")
    now = time.time()
    put("twice", solved(release, add="return 0", mul="return 0"), mtime=now - 3600)
    put("twice", solved(release), name="tiny (resubmitted).ipynb", mtime=now)

    t0 = time.time()
    records = {r.student: r for r in R.grade_all(opts_for(course, subs, out))}
    seconds = time.time() - t0
    try:
        server.accept()
        connected = True
    except BlockingIOError:
        connected = False
    server.close()
    print(f"\ncorpus: {len(records)} submissions graded in {seconds:.0f} s (jobs=2, isolation {LEVEL})")
    return dict(records=records, out=out, subs=subs, course=course, outside=outside,
                connected=connected, opts=opts_for(course, subs, out))


def autograded(corpus, student):
    return nbformat.read(str(corpus["out"] / "autograded" / student / "tiny.ipynb"), as_version=4)


def solution_output(corpus, student) -> str:
    cell = cells_by_id(autograded(corpus, student))["add"]
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


EXPECTED = {  # student: (status, total)
    "good": ("graded", 5), "syntax": ("graded", 3), "exception": ("graded", 3), "loop": ("timeout", 3),
    "alloc": ("out_of_memory", 3), "exit": ("crashed", 0), "segfault": ("crashed", 0),
    "bigprint": ("graded", 5), "deltest": ("graded", 5), "edittest": ("graded", 3), "duptest": ("graded", 5),
    "retype": ("graded", 5), "badmeta": ("graded", 5), "renamed": ("graded", 5), "empty": ("graded", 0),
    "garbage": ("not_a_notebook", 0), "notnb": ("not_a_notebook", 0), "oldformat": ("graded", 5),
    "network": ("graded", 5), "readsol": ("graded", 5), "writeout": ("graded", 5),
    "otherassign": ("failed", 0), "twice": ("graded", 5),
}


@pytest.mark.slow
def test_corpus_every_case_has_a_row(corpus):
    records = corpus["records"]
    assert set(records) == set(EXPECTED), f"missing {set(EXPECTED) - set(records)}, extra {set(records) - set(EXPECTED)}"
    rows = (corpus["out"] / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(EXPECTED), f"grades.csv must have a header and a row per student:\n{rows[:3]}"
    assert rows[0].startswith("student,status,reason,total,max,test_add,test_mul")


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_corpus_outcome(corpus, student):
    r = corpus["records"][student]
    status, total = EXPECTED[student]
    if LEVEL == "none" and student == "alloc":
        pytest.skip("without isolation there is no memory limit")
    assert (r.status, r.total) == (status, total), (
        f"{student}: expected {status} with {total} points, got {r['status']} with {r['total']} "
        f"({r['reason']}; notes {r['notes']})")
    if status != "graded":
        assert r.reason, f"{student}: a {status} row must say why"
    fb = corpus["out"] / "feedback" / student / "tiny.html"
    assert fb.exists(), f"{student}: no feedback file"
    text = fb.read_text()
    assert SECRET not in text and "BEGIN HIDDEN TESTS" not in text, f"{student}: hidden tests leak into feedback"
    assert "Status:</b> " + status in text, f"{student}: the feedback must state the status"


@pytest.mark.slow
def test_corpus_details(corpus):
    rec = corpus["records"]
    assert "renamed" in " ".join(rec["renamed"].notes)
    assert any("latest" in n for n in rec["twice"].notes), rec["twice"].notes
    assert "another assignment" in rec["otherassign"].reason
    assert "segmentation fault" in rec["segfault"].reason, rec["segfault"].reason
    assert "exited with status 3" in rec["exit"].reason, rec["exit"].reason
    assert rec["syntax"].tests["test_add"].message.startswith("NameError"), rec["syntax"].tests
    assert any("output cut" in n for n in rec["bigprint"].notes), rec["bigprint"].notes
    size = (corpus["out"] / "autograded" / "bigprint" / "tiny.ipynb").stat().st_size
    assert size < 1_000_000, f"a 100 MB print must not be kept in the graded notebook ({size} bytes)"
    fb = (corpus["out"] / "feedback" / "syntax" / "tiny.html").read_text()
    assert "test_add" in fb and "failed" in fb and "NameError" in fb, "feedback lists each test's result and message"


@isolated
@pytest.mark.slow
def test_corpus_isolation_refused(corpus):
    assert not corpus["connected"], "a submission reached a server on 127.0.0.1"
    assert "NETWORK: REFUSED" in solution_output(corpus, "network")
    out = solution_output(corpus, "readsol")
    assert SECRET not in out and '"cells"' not in out and "SQLite" not in out, \
        f"a submission read hidden files:\n{out[:2000]}"
    assert "REFUSED ../solutions/tiny/tiny.ipynb" in out, out[:2000]
    assert not (corpus["outside"] / "pwned.txt").exists() and not (corpus["course"] / "pwned.txt").exists()
    assert "WROTE" not in solution_output(corpus, "writeout"), solution_output(corpus, "writeout")


@pytest.mark.slow
def test_gradebook_matches_csv(corpus):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{corpus['out'] / 'gradebook.db'}", "convnets") as gb:
        for student, r in corpus["records"].items():
            score = gb.find_submission("tiny", student).score
            assert score == pytest.approx(r.total), f"{student}: gradebook {score} vs report {r['total']}"


@pytest.mark.slow
def test_rerun_resumes_and_skips(corpus):
    before = {p.name: p.read_text() for p in (corpus["out"] / "results").glob("*.json")}
    records = R.grade_all(corpus["opts"])
    assert len(records) == len(EXPECTED)
    after = {p.name: p.read_text() for p in (corpus["out"] / "results").glob("*.json")}
    assert after == before, "a rerun without --force must not regrade"
    assert "already graded" in (corpus["out"] / "grading.log").read_text()


# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_scores_as_serial_nbgrader(tmp_path):
    """Plain ``nbgrader autograde`` (serial, in the course) and convnets-grade agree."""
    course = make_course(tmp_path)
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_PLATFORM_DIRS": "1"}
    subprocess.run([str(BIN / "nbgrader"), "generate_assignment", "tiny", "--force",
                    f"--CourseDirectory.root={course}", "--CourseDirectory.source_directory=solutions"],
                   cwd=course, env=env, check=True, capture_output=True)
    release = nbformat.read(str(course / "release" / "tiny" / "tiny.ipynb"), as_version=4)
    subs = tmp_path / "subs"
    variants = {"a": solved(release), "b": solved(release, add="return a - b"), "c": solved(release, mul="return 0"),
                "d": release}
    for student, nb in variants.items():
        (course / "submitted" / student / "tiny").mkdir(parents=True)
        nbformat.write(nb, str(course / "submitted" / student / "tiny" / "tiny.ipynb"))
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, str(subs / student / "tiny.ipynb"))
    subprocess.run([str(BIN / "nbgrader"), "autograde", "tiny", "--force", f"--CourseDirectory.root={course}",
                    "--CourseDirectory.source_directory=solutions"], cwd=course, env=env, check=True,
                   capture_output=True)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        serial = {s: gb.find_submission("tiny", s).score for s in variants}
    ours = {r.student: r.total for r in R.grade_all(opts_for(course, subs, tmp_path / "out"))}
    assert ours == serial, f"convnets-grade {ours} vs serial nbgrader {serial}"
    assert serial == {"a": 5, "b": 3, "c": 2, "d": 0}, serial


@pytest.mark.slow
def test_degrades_without_isolation(tmp_path, caplog):
    course = make_course(tmp_path)
    subs = tmp_path / "subs"
    (subs / "ok").mkdir(parents=True)
    src = nbformat.read(str(course / "solutions" / "tiny" / "tiny.ipynb"), as_version=4)
    nbformat.write(src, str(subs / "ok" / "tiny.ipynb"))
    with caplog.at_level("WARNING", logger="convnets.grading"):
        records = R.grade_all(opts_for(course, subs, tmp_path / "out", isolation="none", jobs=1))
    assert [(r.student, r.status, r.total) for r in records] == [("ok", "graded", 5)]
    assert "ISOLATION OFF" in caplog.text


def test_cli_errors_are_clear(tmp_path, capsys):
    from convnets.grading import main

    rc = main(["nope", str(tmp_path), "--out", str(tmp_path / "o"), "--course", str(tmp_path), "--isolation", "none"])
    assert rc == 2 and "no source notebooks" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the real assignment: a forged equality earns nothing

FORGED = '''
class Forged(float):
    """Equal to everything, and a float subclass (to pass isinstance checks)."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __abs__(self): return 0.0
    def __sub__(self, other): return Forged(0.0)
    def __rsub__(self, other): return Forged(0.0)
    __hash__ = float.__hash__
'''


@pytest.mark.slow
def test_forged_equality_gets_no_points_on_00_warmup(tmp_path, monkeypatch):
    # torch writes its compile-cache folder into os.environ the first time it needs it (an earlier
    # test in the same process may have): the kernel must not inherit a path it cannot write
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchinductor_grader")
    assignment = "00-warmup"
    if not (ROOT / "solutions" / assignment).is_dir():
        pytest.skip("00-warmup is not there yet")
    release = nbformat.read(str(ROOT / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4)
    forged = copy.deepcopy(release)
    ids = cells_by_id(forged)
    ids["accuracy"].source = FORGED + "\ndef accuracy(logits, y):\n    return Forged(0.0)\n"
    ids["train_step"].source = FORGED + "\ndef train_step(model, X, y, optimizer, loss_fn):\n    return Forged(0.0)\n"
    subs = tmp_path / "subs"
    (subs / "forger").mkdir(parents=True)
    nbformat.write(forged, str(subs / "forger" / f"{assignment}.ipynb"))
    (subs / "perfect").mkdir()
    shutil.copy(ROOT / "solutions" / assignment / f"{assignment}.ipynb", subs / "perfect")
    records = {r.student: r for r in R.grade_all(R.Options(
        assignment=assignment, submissions=subs, out=tmp_path / "out", course=ROOT, jobs=2, cell_timeout=120))}
    assert records["perfect"].total == records["perfect"].max_total > 0, json.dumps(records["perfect"].to_dict(), indent=1, default=str)
    assert records["forger"].total == 0, f"a forged __eq__ scored points: {records['forger']['tests']}"
