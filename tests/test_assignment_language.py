"""The assignments are bilingual: Russian first, then English (issue 19).

Every markdown cell of every solution notebook (and of its release) carries Russian text before
its English text: a heading reads "## Русский / English", and a cell with a body has the Russian
paragraphs, a line ``---``, then the English ones. Every failure message a student can see (an
``assert``'s message, a ``msg=`` of ``torch.testing.assert_close``, the message of a raised error)
and every pass line (a ``print`` that reports success) in the test and helper cells holds
Russian text and the English one, separated by `` / ``. So a new English-only instruction or
message fails here. See CONTRIBUTING.md, "A bilingual assignment".
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
CYRILLIC = re.compile("[А-Яа-яЁё]")
LATIN_WORD = re.compile("[A-Za-z]{3,}")


def markdown_problems(source: str) -> list[str]:
    """What is wrong with one markdown cell's layout (empty when it is Russian first, then English)."""
    text = source.strip("\n")
    if not CYRILLIC.search(text):
        return ["no Russian text"]
    problems = []
    lines = text.split("\n")
    body = lines
    if lines[0].startswith("#"):
        head = lines[0].lstrip("#").strip()
        ru, sep, en = head.partition(" / ")
        if not sep or not CYRILLIC.search(ru) or not LATIN_WORD.search(en):
            problems.append(f"heading {lines[0]!r} is not 'Русский / English'")
        body = lines[1:]
    if "\n".join(body).strip():
        if "---" not in body:
            problems.append("no line '---' between the Russian and the English text")
        else:
            i = body.index("---")
            before, after = "\n".join(body[:i]), "\n".join(body[i + 1:])
            if not CYRILLIC.search(before):
                problems.append("the text before '---' is not Russian")
            if not LATIN_WORD.search(after):
                problems.append("no English text after '---'")
    return problems


def _python(source: str) -> str:
    """The cell's source with IPython magics (lines starting with %) blanked."""
    return "\n".join("" if line.lstrip().startswith("%") else line for line in source.split("\n"))


def message_problems(source: str) -> list[str]:
    """The student-visible messages of one code cell that lack Russian or English text."""
    py = _python(source)
    problems = []
    for node in ast.walk(ast.parse(py)):
        msg = None
        if isinstance(node, ast.Assert) and node.msg is not None:
            msg = node.msg
        elif isinstance(node, ast.keyword) and node.arg == "msg":
            msg = node.value
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            msg = node.exc.args[0]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            text = ast.get_source_segment(py, node) or ""
            if "passed" in text or ": OK" in text:  # a pass line
                msg = node
        if msg is None:
            continue
        text = ast.get_source_segment(py, msg) or ""
        if not CYRILLIC.search(text) or " / " not in text:
            problems.append(f"line {node.lineno}: {text[:100]!r} is not 'русский / English'")
    return problems


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def notebooks() -> list[Path]:
    found = [ROOT / "solutions" / a / f"{a}.ipynb" for a in ASSIGNMENTS]
    found += [ROOT / "exercises" / a / f"{a}.ipynb" for a in ASSIGNMENTS if (ROOT / "exercises" / a / f"{a}.ipynb").exists()]
    return found


def test_the_checks_catch_english_only_text():
    assert markdown_problems("## Task 1: accuracy (2 points)\n\nReturn the share of correct rows.")
    assert markdown_problems("## Задача 1 / Task 1\n\nReturn the share of correct rows.")
    assert markdown_problems("## Задача 1 / Task 1\n\nВерните долю.\n\nReturn the share.")  # no ---
    assert not markdown_problems("## Задача 1 / Task 1\n\nВерните долю.\n\n---\n\nReturn the share.")
    assert not markdown_problems("Запустите ячейку.\n\n---\n\nRun the cell.")
    assert message_problems('assert x == 1, f"expected 1, got {x}"')
    assert message_problems('torch.testing.assert_close(a, b, msg="values differ")')
    assert message_problems('raise AssertionError("expected a ValueError")')
    assert message_problems('print("visible tests passed")')
    assert not message_problems('assert x == 1, f"ожидалось 1, получено {x} / " f"expected 1, got {x}"')
    assert not message_problems('print("видимые тесты пройдены / visible tests passed")')
    assert not message_problems('print(x)')


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_cells_are_russian_then_english(path):
    problems = []
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] == "markdown":
            problems += [f"cell {i}: {p}" for p in markdown_problems("".join(cell["source"]))]
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


@pytest.mark.parametrize("path", [ROOT / "solutions" / a / f"{a}.ipynb" for a in ASSIGNMENTS],
                         ids=lambda p: p.parent.name)
def test_messages_and_pass_lines_are_bilingual(path):
    problems = []
    for i, cell in enumerate(cells(path)):
        meta = cell.get("metadata", {})
        if cell["cell_type"] != "code" or "setup" in meta.get("tags", []) or meta.get("nbgrader", {}).get("solution"):
            continue  # the shared set-up cell and the students' own code are not checked
        problems += [f"cell {i} ({meta.get('nbgrader', {}).get('grade_id')}): {p}"
                     for p in message_problems("".join(cell["source"]))]
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)
