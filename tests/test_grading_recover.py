"""convnets.grading.recover: submissions whose nbgrader metadata was lost (Colab, VS Code).

Fast tests rebuild the tiny assignment of ``test_grading.py`` with its metadata stripped, cells
moved, merged or split, new cell ids, and check which release cell each student cell became
(the reference is the release itself: its grade_ids and the student's own code). A slow test
grades such submissions for real and checks the points.
"""
from __future__ import annotations

import copy
import uuid

import nbformat
import pytest

from convnets.grading.recover import defined_names, normalise
from convnets.grading.sanitize import repair
from test_grading import make_course, opts_for, solved, tiny_source

from convnets.grading import runner as R


def strip(nb):
    """What Colab does to the tiny notebook: no nbgrader metadata, new cell ids, other metadata."""
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        c.metadata = nbformat.NotebookNode({"id": "colab-" + uuid.uuid4().hex[:6]})
        c.id = uuid.uuid4().hex[:8]
        if c.cell_type == "code":
            c.source = c.source.replace("\n", "\r\n") + "  \n"  # line ends and trailing blanks change
    nb.metadata = nbformat.NotebookNode({"colab": {"provenance": []}})
    return nb


def graded(nb):
    """(grade_id or None, source) of each cell, in order."""
    return [(c.metadata.get("nbgrader", {}).get("grade_id"), c.source) for c in nb.cells]


def answer(nb, gid):
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


RELEASE = tiny_source()
for _c in RELEASE.cells:  # as generate_assignment writes it: blank answers, no hidden tests
    if _c.metadata["nbgrader"].get("solution"):
        _c.source = _c.source.split("### BEGIN SOLUTION")[0] + "    raise NotImplementedError()"
    _c.source = _c.source.split("### BEGIN HIDDEN TESTS")[0].rstrip("\n")


def test_helpers():
    assert defined_names("import x\n@dec\ndef f():\n    pass\nclass B:\n    pass\ny = 1") == ["f", "B"]
    assert defined_names("def broken(:") == []
    assert normalise("a  \r\nb\n\n") == "a\nb"


def test_all_metadata_removed_restores_every_cell_around_the_students_code():
    nb, notes = repair(strip(solved(RELEASE)), RELEASE)
    ids = [g for g, _ in graded(nb)]
    assert ids == ["intro", "add", "test_add", "mul", "test_mul"], ids
    assert "return a + b" in answer(nb, "add") and "return a * b" in answer(nb, "mul"), "the student's code is kept"
    for c in nb.cells:
        want = next(r for r in RELEASE.cells if r.metadata["nbgrader"]["grade_id"] == c.metadata["nbgrader"]["grade_id"])
        assert c.metadata["nbgrader"] == want.metadata["nbgrader"]
    text = " ".join(notes)
    assert "by their source" in text and "'add' by its place" in text and "'mul' by its place" in text, notes
    assert "restored" not in text, f"nothing may be put back blank: {notes}"


def test_moved_answer_goes_back_before_its_test():
    nb = strip(solved(RELEASE))
    add = nb.cells.pop(1)
    nb.cells.append(add)  # the student moved `add` to the end, after every test
    fixed, notes = repair(nb, RELEASE)
    ids = [g for g, _ in graded(fixed)]
    assert ids == ["intro", "add", "test_add", "mul", "test_mul"], ids
    assert "return a + b" in answer(fixed, "add")
    assert any("'add' by the name it defines (add), moved back" in n for n in notes), notes


def test_merged_answers_are_split_by_the_names_they_define():
    nb = strip(solved(RELEASE, add_prefix="HELPER = 1"))
    add, mul = nb.cells[1], nb.cells[3]
    add.source = add.source + "\n\n" + mul.source  # both answers in the first answer's cell
    del nb.cells[3]
    fixed, notes = repair(nb, RELEASE)
    ids = [g for g, _ in graded(fixed)]
    assert ids == ["intro", "add", "test_add", "mul", "test_mul"], ids
    assert "HELPER = 1" in answer(fixed, "add") and "return a + b" in answer(fixed, "add")
    assert "return a * b" in answer(fixed, "mul") and "def add" not in answer(fixed, "mul")
    assert any("merged" in n for n in notes), notes


def test_split_answer_cells_are_joined():
    nb = strip(solved(RELEASE))
    extra = nbformat.v4.new_code_cell("import math  # a helper cell the student added")
    nb.cells.insert(1, extra)
    fixed, notes = repair(nb, RELEASE)
    assert [g for g, _ in graded(fixed)] == ["intro", "add", "test_add", "mul", "test_mul"]
    assert "import math" in answer(fixed, "add") and "return a + b" in answer(fixed, "add")
    assert any("2 cells joined" in n for n in notes), notes


def test_kept_metadata_is_untouched_and_unmatched_answers_say_so():
    nb = copy.deepcopy(solved(RELEASE))
    fixed, notes = repair(copy.deepcopy(nb), RELEASE)
    assert graded(fixed) == graded(nb) and notes == [], notes
    unrelated = nbformat.v4.new_notebook()
    unrelated.cells = [nbformat.v4.new_code_cell("print('hello')")]
    fixed, notes = repair(unrelated, RELEASE)
    assert any("no cell could be matched" in n for n in notes), notes
    assert "print('hello')" not in answer(fixed, "add"), "an unrelated cell is not taken for an answer"


@pytest.mark.slow
def test_recovered_submissions_get_the_points_their_code_earns(tmp_path):
    course = make_course(tmp_path)
    subs = tmp_path / "subs"
    (tmp_path / "out").mkdir()
    release = R.build_template(opts_for(course, subs, tmp_path / "out").validated()).notebooks["tiny"]
    cases = {}
    cases["stripped"] = strip(solved(release))                   # all metadata gone: 5
    nb = strip(solved(release))
    nb.cells.append(nb.cells.pop(1))                             # `add` moved after the tests: 5
    cases["moved"] = nb
    nb = strip(solved(release, mul="return a + b"))              # merged, `mul` wrong: 2
    nb.cells[1].source += "\n\n" + nb.cells[3].source
    del nb.cells[3]
    cases["merged_wrong_mul"] = nb
    cases["stripped_blank"] = strip(release)                    # nothing answered: 0
    for student, nb in cases.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, str(subs / student / "tiny.ipynb"))
    records = {r.student: r for r in R.grade_all(opts_for(course, subs, tmp_path / "out"))}
    got = {s: (r.status, r.total) for s, r in records.items()}
    assert got == {"stripped": ("graded", 5), "moved": ("graded", 5), "merged_wrong_mul": ("graded", 2),
                   "stripped_blank": ("graded", 0)}, {s: (r.total, r.notes) for s, r in records.items()}
    assert any("recognised" in n for n in records["stripped"].notes)
    csv = (tmp_path / "out" / "grades.csv").read_text()
    assert "recognised your answer 'add'" in csv, "the row's notes say what was recovered"


def test_an_edited_test_copy_is_not_taken_into_the_answer():
    nb = strip(solved(RELEASE))
    nb.cells[2].source += "\nprint('my own line')"   # the student edited test_add: no longer matches
    nb.cells.insert(1, nbformat.v4.new_code_cell("assert True  # my own check"))
    fixed, notes = repair(nb, RELEASE)
    assert answer(fixed, "add").strip().startswith("def add"), answer(fixed, "add")
    assert [g for g, _ in graded(fixed)].count("test_add") == 1, "the test is put back from the release"
