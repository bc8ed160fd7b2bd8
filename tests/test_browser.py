"""The built book in a real browser (Debian's chromium, headless, driven by playwright with the
system browser: nothing is downloaded). Every page of the table of contents, in both editions
(Russian and English), is opened from a local web server with every other host blocked, and
checked: no console errors, no failed requests, no broken images, no broken links within the
book, math rendered by the local MathJax, a language switch that leads to the same page in the
other edition, static widgets that respond to their slider, and a search in each language that
finds a chapter by a word of its text. A screenshot of every page is saved to
``_build/screenshots/``."""
from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from test_book import LANGS, ROOT, SITE, toc_files

pytestmark = pytest.mark.slow
SHOTS = ROOT / "_build" / "screenshots"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def site(book_build):
    proc, _ = book_build
    assert proc.returncode == 0, "the book did not build; see test_book.py"
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by scripts/setup.sh")
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium on this machine: scripts/setup.sh installs Debian's chromium (apt) when run as root")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _open(browser, url: str):
    """Open ``url``; return the page and lists of console errors, failed requests, blocked hosts."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed, blocked = [], [], []
    host = urlparse(url).netloc

    def route(r):
        if urlparse(r.request.url).netloc in (host, "") or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})") if r.url not in blocked else None)
    page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    if page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
        page.evaluate("() => MathJax.startup.promise")
    return page, errors, failed, blocked


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("doc", toc_files())
def test_page_in_browser(browser, site, doc, lang):
    url = urljoin(site, f"{lang}/{doc}.html")
    page, errors, failed, blocked = _open(browser, url)
    doc = f"{lang}/{doc}"
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{doc.replace('/', '__')}.png"), full_page=True)
        assert not blocked, f"{doc}: the page asked other hosts for {blocked[:5]}"
        assert not failed, f"{doc}: failed requests {failed[:5]}"
        assert not errors, f"{doc}: console errors {errors[:5]}"
        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert not broken, f"{doc}: broken images {broken[:5]}"
        # links within the book lead to files that exist
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        missing = []
        for h in hrefs:
            u = urlparse(h)
            if u.netloc != urlparse(site).netloc or not u.path:
                continue
            target = SITE / u.path.lstrip("/")
            if u.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                missing.append(h)
        assert not missing, f"{doc}: links to missing files {sorted(set(missing))[:5]}"
        # the language switch leads to this page in the other edition
        other = [x for x in LANGS if x != lang][0]
        switch = page.evaluate("() => Array.from(document.querySelectorAll('a.companion-lang-link')).map(a => a.href)")
        assert switch == [urljoin(site, f"{other}/{doc.split('/', 1)[1]}.html")], f"{doc}: language switch {switch}"
        # math: every math element of the page was typeset by MathJax
        n_math = page.evaluate("() => document.querySelectorAll('.math').length")
        if n_math:
            n_typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
            assert n_typeset >= n_math, f"{doc}: {n_math} math elements but {n_typeset} typeset by MathJax"
    finally:
        page.close()


def _widget_pages() -> list[str]:
    pages = []
    for doc in toc_files():
        f = SITE / "en" / f"{doc}.html"
        if f.is_file() and "application/vnd.jupyter.widget-state+json" in f.read_text(errors="replace"):
            pages.append(doc)
    return pages


def test_static_widgets_respond_to_their_slider(browser, site):
    pages = _widget_pages()
    if not pages:
        pytest.skip("no page of the book embeds widgets yet")
    for doc in pages:
        page, errors, _, _ = _open(browser, urljoin(site, f"en/{doc}.html"))
        try:
            page.wait_for_selector(".widget-slider, .jupyter-widget-slider, .widget-hslider", timeout=20000)
            sliders = page.locator(".widget-hslider, .widget-slider").all()
            assert sliders, f"{doc}: widgets are embedded but no slider was rendered"
            # the stack next to the first slider shows one image; moving the slider changes it
            before = page.evaluate(_VISIBLE_IMAGE)
            handle = page.locator(".noUi-handle, .ui-slider-handle, [role=slider]").first
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(500)
            after = page.evaluate(_VISIBLE_IMAGE)
            assert before and after and before != after, f"{doc}: the slider did not change the image shown"
            assert not errors, f"{doc}: console errors {errors[:5]}"
        finally:
            page.close()


_VISIBLE_IMAGE = """() => {
  const imgs = Array.from(document.querySelectorAll('.widget-stack img, .jupyter-widget-stack img, .widget-container img'));
  const shown = imgs.filter(i => i.offsetParent !== null && i.getBoundingClientRect().width > 0);
  return shown.length ? shown[0].src.slice(-200) : null;
}"""


@pytest.mark.parametrize("lang, word, expected", [
    # a Russian word in an inflected form that the page does not contain verbatim: found through
    # Sphinx's Russian stemmer
    ("ru", "нормализацией", "book/02-normalization.html"),
    ("en", "normalizing", "book/02-normalization.html"),
])
def test_search_finds_a_chapter_in_each_language(browser, site, lang, word, expected):
    page, errors, _, _ = _open(browser, urljoin(site, f"{lang}/search.html?q={word}"))
    try:
        page.wait_for_selector("ul.search li a", timeout=30000)
        hits = page.evaluate("() => Array.from(document.querySelectorAll('ul.search li a')).map(a => a.getAttribute('href'))")
        assert any(h.split("?")[0].split("#")[0] == expected for h in hits), f"{lang}: '{word}' found {hits[:8]}"
        assert not errors, f"{lang} search: console errors {errors[:5]}"
    finally:
        page.close()
