"""The book builds from its sources with every chapter executed, warnings fatal (-W -n), with the
network blocked, in both editions (Russian and English, _build/html/ru and _build/html/en), and
the pages it produces load nothing from another host."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SITE = ROOT / "_build" / "html"
LANGS = ("ru", "en")  # the editions; the first one opens at _build/html/index.html
HTML = SITE / "en"

pytestmark = pytest.mark.slow


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            for part in e.get("parts", []) if isinstance(e, dict) else []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


@pytest.fixture(scope="module")
def build(book_build):
    return book_build


def test_book_builds_without_warnings(build):
    proc, _ = build
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"scripts/build-book.sh failed:\n{tail}"
    assert "build-book: open _build/html/index.html" in proc.stdout, tail
    # Sphinx's warnings (the kernels' own "[IPKernelApp] WARNING" lines are not the book's)
    assert not re.search(r": WARNING: ", proc.stdout + proc.stderr), tail


def test_network_was_blocked_where_possible(build):
    _, offline = build
    if not offline:
        pytest.skip("no network namespaces here (unshare -n needs root or user namespaces)")


@pytest.mark.parametrize("lang", LANGS)
def test_every_toc_page_is_built(build, lang):
    for f in toc_files():
        page = SITE / lang / f"{f}.html"
        assert page.is_file(), f"{f} is in _toc.yml but {page.relative_to(ROOT)} was not built"


def test_the_site_opens_the_russian_edition(build):
    index = (SITE / "index.html").read_text(encoding="utf-8")
    assert re.search(r'http-equiv="refresh" content="0; url=ru/index\.html"', index), index[:400]
    assert (SITE / "ru" / "index.html").is_file()


@pytest.mark.parametrize("lang", LANGS)
def test_chapters_show_their_figures_and_paper_tables(build, lang):
    """Every chapter draws figures inline (a headless matplotlib backend inherited from the caller
    once left them all out), and chapters 02-08 render "Paper vs here" as a table."""
    for f in toc_files():
        name = Path(f).name
        if not name[:2].isdigit():
            continue
        page = (SITE / lang / f"{f}.html").read_text(encoding="utf-8")
        assert "<img" in page, f"{lang}/{name}: no figure on the page"
        if name[:2] != "01":
            assert 'class="paper-vs-here"' in page, f"{lang}/{name}: no Paper vs here table"


def _text(html: str) -> str:
    body = html.split('<article class="bd-article"', 1)[-1]
    # the prose only: no code, no printed outputs or tables (they are the same in both editions)
    body = re.sub(r"<(script|style|pre|table|code)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_the_russian_edition_is_russian_with_the_same_numbers(build):
    """Every Russian page is marked Russian and reads in Russian (its title and most of its
    prose), while the code cells' outputs, which carry the measurements, are the English
    edition's exactly: one source for every number."""
    for f in toc_files():
        ru = (SITE / "ru" / f"{f}.html").read_text(encoding="utf-8")
        en = (SITE / "en" / f"{f}.html").read_text(encoding="utf-8")
        assert '<html lang="ru"' in ru and '<html lang="en"' in en, f
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", ru, re.S).group(1)
        assert re.search("[А-Яа-яЁё]{3}", re.sub(r"«[^»]*»", "", h1)), f"{f}: the Russian title is not Russian: {h1[:120]}"
        words = re.findall(r"[A-Za-zА-Яа-яЁё]{4,}", re.sub(r"«[^»]*»", " ", _text(ru)))
        cyr = sum(bool(re.match("[А-Яа-яЁё]", w)) for w in words)
        assert cyr > 0.75 * len(words), f"{f}: only {cyr} of {len(words)} words of the Russian prose are Russian"
        outs = lambda h: re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>', h, re.S)
        assert outs(ru) == outs(en), f"{f}: the code outputs differ between the editions"


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_links_to_itself_in_the_other_edition(build, lang):
    other = [x for x in LANGS if x != lang][0]
    for f in toc_files():
        page = (SITE / lang / f"{f}.html").read_text(encoding="utf-8")
        m = re.search(r'class="companion-lang-link" hreflang="(\w+)"[^>]*href="([^"]+)"', page)
        assert m and m.group(1) == other, f"{lang}/{f}: no switch to the {other} edition"
        target = (SITE / lang / f).parent / m.group(2)
        assert target.resolve() == (SITE / other / f"{f}.html").resolve(), f"{lang}/{f}: the switch leads to {m.group(2)}"


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", re.I)
CSS_REMOTE = re.compile(r"""url\(\s*["']?(?:https?:)?//""", re.I)


def test_pages_load_nothing_remote(build):
    offenders = []
    for page in SITE.rglob("*.html"):
        html = page.read_text(errors="replace")
        for tag in re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", html, re.I):
            if REMOTE.search(tag) and not re.search(r"""rel\s*=\s*["'](?:canonical|alternate)""", tag):
                offenders.append(f"{page.relative_to(SITE)}: {tag[:160]}")
    for css in SITE.rglob("*.css"):
        if CSS_REMOTE.search(css.read_text(errors="replace")):
            offenders.append(f"{css.relative_to(SITE)}: remote url() in CSS")
    assert not offenders, "pages load resources from other hosts:\n" + "\n".join(offenders[:20])


@pytest.mark.parametrize("lang", LANGS)
def test_math_and_widgets_are_served_locally(build, lang):
    html = SITE / lang
    page = (html / "book" / "01-data-and-training.html").read_text()
    assert re.search(r"""<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js""", page), "MathJax is not loaded from _static"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html / "_static" / "widgets" / "embed-amd.js").is_file()
    assert any((html / "@jupyter-widgets" / "html-manager" / "dist").glob("*.woff2"))
