"""Recognising a submission's cells when their nbgrader metadata was lost (``docs/instructors.md``).

A notebook edited outside the course's Jupyter (Google Colab, VS Code, an editor that rewrites
the JSON) can come back with the cells' nbgrader metadata gone (nbgrader issues #424, #1398).
nbgrader would then restore every cell from the release and grade the student's code as blank.
:func:`recover` finds the student's cells again, by content, and puts the release's metadata
back around the student's own code:

1. a locked cell (a test, an instruction, the imports) is the unmarked cell whose source equals
   the released cell's (whitespace at line ends and around the cell ignored);
2. a cell that defines several answers' functions or classes (cells merged) is split, at its
   top-level statements, into one cell per answer;
3. an answer is the code between the released answer's neighbours (the graded or locked cells
   before and after it in the release, found by 1.): one cell, or several joined (a cell
   split); if nothing there defines the answer's names (``def accuracy``, ``class BasicBlock``)
   but another cell does, that cell was moved: it goes back to the answer's place, so the tests
   after it see it;
4. an answer with no match stays missing (graded as unanswered, as before); the notes say so.

Every decision becomes a note in the student's row. Cells that keep their metadata are not
touched: this runs only for the release's ``grade_id``s that the notebook lacks.
"""
from __future__ import annotations

import ast
import copy

from nbformat import NotebookNode


def normalise(source: str) -> str:
    """Source compared for equality: line ends unified, trailing spaces and outer blank lines dropped."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def defined_names(source: str) -> list[str]:
    """Top-level functions and classes defined by ``source`` (in order); [] when it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _segments(source: str, owner_of: dict[str, str]) -> list[tuple[str, str]] | None:
    """Split ``source`` at top-level statements into ``(grade_id, text)`` pieces, one per answer
    whose names it defines; statements between definitions go with the next definition (the
    last ones with the last). None when it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.split("\n")
    pieces: list[tuple[str, list[str]]] = []
    pending: list[str] = []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        text = lines[start:node.end_lineno]
        name = getattr(node, "name", None)
        gid = owner_of.get(name) if name else None
        if gid is None:
            pending += text
        elif pieces and pieces[-1][0] == gid:
            pieces[-1][1].extend(pending + text)
            pending = []
        else:
            pieces.append((gid, pending + text))
            pending = []
    if pending and pieces:
        pieces[-1][1].extend(pending)
    return [(gid, "\n".join(text)) for gid, text in pieces]


def _is_test_like(source: str) -> bool:
    """A cell with an ``assert`` at the top level (a copy of a test, the student's own check)."""
    try:
        return any(isinstance(n, ast.Assert) for n in ast.parse(source).body)
    except SyntaxError:
        return False


def _gid(cell: NotebookNode) -> str | None:
    md = cell.metadata.get("nbgrader")
    return md.get("grade_id") if isinstance(md, dict) else None


def recover(cells: list[NotebookNode], release_cells: dict[str, NotebookNode]) -> tuple[list[NotebookNode], list[str]]:
    """Give the release's metadata back to the student's cells that lost it (module docstring).

    ``cells``: the submission's cells, those with valid metadata already carrying it;
    ``release_cells``: the release's nbgrader cells by ``grade_id``, in release order.
    Returns the new cell list and the notes.
    """
    order = list(release_cells)
    present = {_gid(c) for c in cells} - {None}
    missing = [g for g in order if g not in present]
    if not missing:
        return cells, []
    cells = list(cells)
    notes: list[str] = []
    unmarked = lambda c: "nbgrader" not in c.metadata  # noqa: E731

    def restore(cell: NotebookNode, gid: str) -> NotebookNode:
        want = release_cells[gid]
        if cell.cell_type != want.cell_type:
            new = copy.deepcopy(want)
            new.source = cell.source
            cell = new
        cell.metadata["nbgrader"] = copy.deepcopy(want.metadata["nbgrader"])
        return cell

    # 1. locked cells (tests, instructions, imports) by their source
    by_source = []
    for gid in missing:
        want = release_cells[gid]
        if want.metadata["nbgrader"].get("solution"):
            continue
        key = normalise(want.source)
        for i, c in enumerate(cells):
            if unmarked(c) and c.cell_type == want.cell_type and normalise(c.source) == key:
                cells[i] = restore(c, gid)
                by_source.append(gid)
                break
    if by_source:
        notes.append(f"nbgrader metadata was missing: recognised {len(by_source)} locked cell(s) by their source "
                     f"({', '.join(by_source)})")
    answers = [g for g in missing if release_cells[g].metadata["nbgrader"].get("solution")]
    names = {g: defined_names(release_cells[g].source) for g in answers}
    owner_of = {n: g for g in answers for n in names[g]}

    # 2. a cell defining several answers' names was merged: split it
    i = 0
    while i < len(cells):
        c = cells[i]
        if unmarked(c) and c.cell_type == "code":
            owners = {owner_of[n] for n in defined_names(c.source) if n in owner_of}
            pieces = _segments(c.source, owner_of) if len(owners) > 1 else None
            if pieces:
                new = []
                for gid, text in pieces:
                    piece = copy.deepcopy(c)
                    piece.source = text
                    piece.metadata["_convnets_answer"] = gid
                    new.append(piece)
                cells[i:i + 1] = new
                notes.append(f"a cell answered {', '.join(repr(g) for g, _ in pieces)} together (merged cells): "
                             "split into one cell per answer")
                i += len(new)
                continue
        i += 1

    # 3. each answer: between its neighbours, or moved (found by the names it defines)
    anchored = any(_gid(c) for c in cells)
    for gid in answers:
        want = release_cells[gid]
        k = order.index(gid)
        where = {_gid(c): j for j, c in enumerate(cells) if _gid(c)}
        prev = next((g for g in reversed(order[:k]) if g in where), None)
        nxt = next((g for g in order[k + 1:] if g in where), None)
        lo = where[prev] + 1 if prev else 0
        hi = where[nxt] if nxt else len(cells)
        tagged = [j for j, c in enumerate(cells) if unmarked(c) and c.metadata.get("_convnets_answer") == gid]
        wanted = set(names[gid])
        others = set(owner_of) - wanted
        between = [j for j in range(lo, hi) if unmarked(cells[j]) and cells[j].cell_type == want.cell_type
                   and cells[j].metadata.get("_convnets_answer") in (None, gid)
                   and not (others & set(defined_names(cells[j].source))
                            and not wanted & set(defined_names(cells[j].source)))]
        defines = [j for j in range(len(cells)) if unmarked(cells[j]) and cells[j].cell_type == "code"
                   and wanted & set(defined_names(cells[j].source))
                   and cells[j].metadata.get("_convnets_answer") in (None, gid)]
        place = f"between {prev!r} and {nxt!r}" if prev and nxt else (f"after {prev!r}" if prev else f"before {nxt!r}")
        if wanted and any(j in defines for j in between):
            # up to the cell that defines the answer; a cell of top-level asserts is a test, not the answer
            last = max(j for j in between if j in defines)
            between = [j for j in between if j <= last and (j in defines or not _is_test_like(cells[j].source))]
        if anchored and between and (not wanted or any(j in defines for j in between) or not defines):
            chosen, how = between, f"by its place ({place})"
        elif tagged or defines:
            chosen = sorted(set(tagged) | set(defines))
            how = f"by the name{'s' if len(wanted) > 1 else ''} it defines ({', '.join(sorted(wanted))})"
        else:
            notes.append(f"no cell matched the answer {gid!r}: graded as unanswered")
            continue
        first = copy.deepcopy(cells[chosen[0]])
        first.source = "\n\n".join(cells[j].source for j in chosen)
        first.metadata.pop("_convnets_answer", None)
        cell = restore(first, gid)
        moved = not all(lo <= j < hi for j in chosen)
        for j in sorted(chosen, reverse=True):
            del cells[j]
        where = {_gid(c): j for j, c in enumerate(cells) if _gid(c)}
        at = where[prev] + 1 if prev else (where[nxt] if nxt else len(cells))
        if not moved:  # keep it where it was among the student's own cells
            at = min(chosen)
        cells.insert(at, cell)
        extra = f", {len(chosen)} cells joined (split cell)" if len(chosen) > 1 else ""
        extra += f", moved back {place}" if moved else ""
        notes.append(f"recognised your answer {gid!r} {how}{extra}")
    for c in cells:
        c.metadata.pop("_convnets_answer", None)
    if not any(_gid(c) for c in cells) and missing:
        notes.append("nbgrader metadata was missing and no cell could be matched to the release: graded as unanswered")
    return cells, notes
