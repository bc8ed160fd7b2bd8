"""The book's text against the lecture: headings quote the slides exactly, the intro's
lecture-to-chapter table lists every slide title, the glossary is complete."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT.parent / "shared" / "lecture-05-slides.md"
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("0*.md"))

pytestmark = pytest.mark.skipif(not SLIDES.is_file(), reason="the lecture's slides (../shared) are absent")


def _norm(s: str) -> str:
    return " ".join(s.split())


def _slides():
    text = SLIDES.read_text(encoding="utf-8")
    titles = {_norm(m) for m in re.findall(r"^# (.+)$", text, flags=re.M)}
    return titles, _norm(text)


def _headings(path: Path):
    in_code = False
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"#{1,6} ", line):
            yield i, line


def test_headings_quote_the_slides_exactly():
    titles, text = _slides()
    # the lecture's and the course's own names may be quoted too
    allowed = titles | {"Свёрточные архитектуры", "Основы глубинного обучения"}
    bad = []
    for path in CHAPTERS + [BOOK / "intro.md", BOOK / "glossary.md"]:
        for i, line in _headings(path):
            for q in re.findall(r"«([^»]+)»", line):
                if _norm(q) not in allowed and _norm(q) not in text:
                    bad.append(f"{path.name}:{i}: «{q}» is not slide text (a paraphrase is not in «»)")
    assert not bad, "\n".join(bad)


def test_every_chapter_heading_names_its_slides():
    titles, _ = _slides()
    for path in CHAPTERS:
        if path.name.startswith("01-"):
            continue  # the setting (data, a CNN, the loop): no slide of its own
        first = next(line for _, line in _headings(path) if line.startswith("# "))
        quoted = {_norm(q) for q in re.findall(r"«([^»]+)»", first)}
        assert quoted & titles, f"{path.name}: the title {first!r} quotes no slide title"


def test_intro_table_lists_every_slide_title():
    titles, _ = _slides()
    intro = (BOOK / "intro.md").read_text(encoding="utf-8")
    table = _norm(" ".join(ln for ln in intro.splitlines() if ln.startswith("|")))
    missing = sorted(t for t in titles if t != "Основы глубинного обучения" and f"«{t}»" not in table)
    assert not missing, f"slide titles missing from the intro's lecture table: {missing}"


def test_glossary_has_the_lecture_terms():
    rows = [ln for ln in (BOOK / "glossary.md").read_text(encoding="utf-8").splitlines()
            if ln.startswith("| ") and not ln.startswith("| Термин") and not ln.startswith("|---")]
    assert len(rows) >= 45, f"the glossary has {len(rows)} pairs, expected at least 45"
    ru = [r.split("|")[1].strip() for r in rows]
    assert len(set(ru)) == len(ru), "a Russian term appears twice in the glossary"
    text = " ".join(ru).lower()
    for term in ["несмещённая", "скользящие статистики", "затухание", "деградация", "проекция",
                 "узкое место", "вспомогательный классификатор", "top-5", "разогрев", "поканальная",
                 "поточечная", "se-блок", "составное масштабирование", "cutout", "mixup", "cutmix"]:
        assert term in text, f"glossary lacks the term {term!r}"
    # every link points at a chapter that exists
    for r in rows:
        for target in re.findall(r"\]\(([^)]+)\)", r):
            assert (BOOK / target).is_file(), f"glossary row links to a missing page: {r}"
