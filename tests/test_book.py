"""The book builds from its sources with every chapter executed, warnings fatal (-W -n), with the
network blocked, and the pages it produces load nothing from another host."""
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
HTML = ROOT / "_build" / "html"

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
    assert proc.returncode == 0, f"jupyter-book build failed:\n{tail}"
    assert "build succeeded" in proc.stdout, tail


def test_network_was_blocked_where_possible(build):
    _, offline = build
    if not offline:
        pytest.skip("no network namespaces here (unshare -n needs root or user namespaces)")


def test_every_toc_page_is_built(build):
    for f in toc_files():
        page = HTML / f"{f}.html"
        assert page.is_file(), f"{f} is in _toc.yml but {page.relative_to(ROOT)} was not built"


def test_chapters_show_their_figures_and_paper_tables(build):
    """Every chapter draws figures inline (a headless matplotlib backend inherited from the caller
    once left them all out), and chapters 02-08 render "Paper vs here" as a table."""
    for f in toc_files():
        name = Path(f).name
        if not name[:2].isdigit():
            continue
        page = (HTML / f"{f}.html").read_text(encoding="utf-8")
        assert "<img" in page, f"{name}: no figure on the page"
        if name[:2] != "01":
            assert 'class="paper-vs-here"' in page, f"{name}: no Paper vs here table"


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", re.I)
CSS_REMOTE = re.compile(r"""url\(\s*["']?(?:https?:)?//""", re.I)


def test_pages_load_nothing_remote(build):
    offenders = []
    for page in HTML.rglob("*.html"):
        html = page.read_text(errors="replace")
        for tag in re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", html, re.I):
            if REMOTE.search(tag) and not re.search(r"""rel\s*=\s*["'](?:canonical|alternate)""", tag):
                offenders.append(f"{page.relative_to(HTML)}: {tag[:160]}")
    for css in HTML.rglob("*.css"):
        if CSS_REMOTE.search(css.read_text(errors="replace")):
            offenders.append(f"{css.relative_to(HTML)}: remote url() in CSS")
    assert not offenders, "pages load resources from other hosts:\n" + "\n".join(offenders[:20])


def test_math_and_widgets_are_served_locally(build):
    page = (HTML / "book" / "01-data-and-training.html").read_text()
    assert re.search(r"""<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js""", page), "MathJax is not loaded from _static"
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (HTML / "_static" / "widgets" / "embed-amd.js").is_file()
    assert any((HTML / "@jupyter-widgets" / "html-manager" / "dist").glob("*.woff2"))
