"""Reading and repairing a student's notebook before nbgrader sees it (``docs/instructors.md``).

nbgrader 0.9.6 aborts a whole batch on a duplicated ``grade_id`` or a cell whose nbgrader
metadata has an unknown ``schema_version``, and cannot read garbage. Here each submitted file
is parsed on its own and, against the released notebook:

- bytes that are not UTF-8 JSON, JSON that is not a notebook, an nbformat that cannot be
  read: :class:`NotANotebook` with the reason;
- nbformat 3 (or an older 4.x) is converted to the current 4.x;
- a cell whose ``grade_id`` the release has gets the release's nbgrader metadata back
  (points, locked, checksum, schema version): edits of metadata cannot change the grading;
- a test cell turned into markdown or raw goes back to code (nbgrader then restores its source);
- a second cell with an already-seen ``grade_id``, and a cell with a ``grade_id`` the release
  does not have, lose their nbgrader metadata (the cell stays, ungraded);
- a notebook none of whose graded cells belong to the release is for another assignment;
- cells whose metadata was lost are recognised by content (:mod:`convnets.grading.recover`);
- deleted cells of the release are put back (a deleted answer is unanswered).
"""
from __future__ import annotations

import ast
import copy
import json
import uuid
import warnings
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from .recover import recover


class NotANotebook(ValueError):
    """The file cannot be graded as a notebook; the message says why."""


class WrongAssignment(ValueError):
    """The notebook belongs to another assignment; the message says which grade_ids it has."""


def release_cells(release_nb: NotebookNode) -> dict[str, NotebookNode]:
    """The released notebook's nbgrader cells, by ``grade_id``."""
    out = {}
    for cell in release_nb.cells:
        md = cell.metadata.get("nbgrader")
        if isinstance(md, dict) and isinstance(md.get("grade_id"), str):
            out[md["grade_id"]] = cell
    return out


def parse(data: bytes | None, size: int = 0) -> tuple[NotebookNode, list[str]]:
    """Parse bytes into a current-format notebook, or raise :class:`NotANotebook`."""
    notes: list[str] = []
    if data is None:
        raise NotANotebook(f"file too large ({size / 2**20:.0f} MB)")
    if not data.strip():
        raise NotANotebook("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotANotebook("the file is not text (not UTF-8): is it really a .ipynb?") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise NotANotebook(f"the file is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(raw, dict) or not ("cells" in raw or "worksheets" in raw) or "nbformat" not in raw:
        raise NotANotebook("the JSON is not a Jupyter notebook (no 'cells' and 'nbformat')")
    major = raw.get("nbformat")
    if not isinstance(major, int) or major < 3 or major > 4:
        raise NotANotebook(f"unsupported nbformat {major!r} (expected 3 or 4)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several types on malformed input
        raise NotANotebook(f"nbformat cannot read it: {type(e).__name__}: {str(e)[:200]}") from None
    if major == 3:
        notes.append("converted from nbformat 3")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate cell ids: nbgrader renumbers them
            nbformat.validate(nb)
    except nbformat.ValidationError:
        try:
            _, nb_dict = nbformat.validator.normalize(nb)
            nb = nbformat.from_dict(nb_dict)
            nbformat.validate(nb)
            notes.append("repaired nbformat structure")
        except Exception as e:
            raise NotANotebook(f"the notebook does not follow nbformat: {str(e).splitlines()[0][:200]}") from None
    return nb, notes


def _code_cell(source: str, metadata: dict) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = NotebookNode(copy.deepcopy(metadata))
    return cell


def repair(nb: NotebookNode, release_nb: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Restore the release's nbgrader metadata on ``nb`` (see the module docstring)."""
    ref = release_cells(release_nb)
    notes: list[str] = []
    seen: set[str] = set()
    foreign: list[str] = []
    cells = []
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", None)
        if md is None:
            cells.append(cell)
            continue
        gid = md.get("grade_id") if isinstance(md, dict) else None
        if not isinstance(gid, str) or gid not in ref:
            del cell.metadata["nbgrader"]
            if isinstance(gid, str):
                foreign.append(gid)
            notes.append(f"removed nbgrader metadata the release does not have (grade_id {gid!r})")
            cells.append(cell)
            continue
        if gid in seen:
            del cell.metadata["nbgrader"]
            notes.append(f"a second cell with grade_id {gid!r}: kept the first, the copy is ungraded")
            cells.append(cell)
            continue
        seen.add(gid)
        want = ref[gid]
        keys = ("grade", "solution", "locked", "points", "schema_version", "task")
        if not isinstance(md, dict) or any(md.get(k) != want.metadata["nbgrader"].get(k) for k in keys):
            notes.append(f"restored the nbgrader metadata of cell {gid!r}")
        if cell.cell_type != want.cell_type:
            notes.append(f"cell {gid!r} was turned into {cell.cell_type}: restored to {want.cell_type}")
            if want.cell_type == "code":
                cell = _code_cell(cell.source, {k: v for k, v in cell.metadata.items()})
            else:
                new = copy.deepcopy(want)
                new.source = cell.source
                cell = new
        cell.metadata["nbgrader"] = copy.deepcopy(want.metadata["nbgrader"])
        cells.append(cell)
    if ref and not seen and foreign:
        raise WrongAssignment("this notebook belongs to another assignment: its graded cells "
                              f"({', '.join(sorted(set(foreign))[:6])}) are not in this one")
    # cells whose metadata was lost (Colab, VS Code): recognised by content (convnets.grading.recover)
    cells, found = recover(cells, ref)
    notes += found
    seen = {c.metadata["nbgrader"]["grade_id"] for c in cells if c.metadata.get("nbgrader")}
    if not any(c.metadata.get("nbgrader") for c in cells):
        notes.append("empty notebook" if not cells else "no graded cell of the release in the notebook")
    # put back deleted cells of the release (nbgrader 0.9.6's add_missing_cells fails with a
    # KeyError when the cell before a missing test is missing too): each goes after the last
    # present cell that precedes it in the release; a restored solution cell is unanswered
    order = list(ref)
    missing = [gid for gid in order if gid not in seen]
    for gid in missing:
        where = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(cells) if c.metadata.get("nbgrader")}
        before = [where[g] for g in order[:order.index(gid)] if g in where]
        cells.insert(max(before) + 1 if before else 0, copy.deepcopy(ref[gid]))
        seen.add(gid)
    if missing:
        notes.append(f"restored {len(missing)} deleted cell(s) from the release: {', '.join(missing)}")
    # cells put back or rebuilt from the release may repeat a cell id: nbformat would warn and renumber
    ids: set[str] = set()
    for cell in cells:
        if "id" in cell and cell.id in ids:
            cell.id = uuid.uuid4().hex[:8]
        if "id" in cell:
            ids.add(cell.id)
    nb.cells = cells
    return nb, notes


def reference_imports(nb: NotebookNode, package: str = "convnets") -> list[str]:
    """Imports of ``package`` in the solution cells (flagged: the task is to write one's own)."""
    found = []
    for cell in nb.cells:
        md = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not md.get("solution"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [a.name for a in node.names if a.name.split(".")[0] == package]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == package:
                found += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" \
                    and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).split(".")[0] == package:
                found.append(str(node.args[0].value))
    return sorted(set(found))


def load_release(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)
