"""Sphinx extension for the course companion: launch links on every chapter page.

Each chapter page gets a bar with

- "Download notebook": the executed chapter as an ``.ipynb`` (copied into the site under
  ``notebooks/``), which JupyterLab, Notebook 7 and Colab (File > Upload notebook) open;
- "Open in Colab": when ``companion_repository_url`` names a GitHub repository, a link to the
  paired ``book/<chapter>.ipynb`` committed there (Colab cannot open the ``.md`` source);
- "Exercise": the chapter's assignment notebook (``companion_exercises`` maps a chapter to its
  assignment), copied into the site under ``exercises/``.

Every page also gets a link to the same page in the book's other language
(``companion_languages``; the editions are built side by side into ``_build/html/<language>/`` by
``scripts/build-book.sh``), and the bar's labels follow the page's language.
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx


def colab_url(repository_url: str, branch: str, docname: str) -> str | None:
    """The Colab address of the paired notebook of ``docname`` in a GitHub repository."""
    m = re.match(r"https?://github\.com/([^/]+)/([^/#?]+?)(?:\.git)?/?$", repository_url or "")
    if not m:
        return None
    return f"https://colab.research.google.com/github/{m.group(1)}/{m.group(2)}/blob/{branch}/{docname}.ipynb"


def _is_chapter(app: Sphinx, docname: str) -> bool:
    src = Path(app.srcdir, docname + ".md")
    return src.is_file() and "kernelspec:" in src.read_text(encoding="utf-8")[:600]


# The bar's labels per language (the book's text is translated through locales/; these few
# strings are built here).
LABELS = {
    "en": {"download": "Download notebook (.ipynb)", "colab": "Open in Colab", "exercise": "Exercise",
           "switch": "Русская версия", "switch_title": "Эта страница по-русски"},
    "ru": {"download": "Скачать ноутбук (.ipynb)", "colab": "Открыть в Colab", "exercise": "Задание",
           "switch": "English version", "switch_title": "This page in English"},
}
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


def _language(app: Sphinx) -> str:
    lang = (app.config.language or "en").split("_")[0]
    return lang if lang in LABELS else "en"


def _bar(app: Sphinx, pagename: str) -> str:
    depth = pagename.count("/")
    up = "../" * depth
    name = pagename.rsplit("/", 1)[-1]
    t = LABELS[_language(app)]
    links = [f'<a class="companion-link" href="{up}notebooks/{name}.ipynb" download>{t["download"]}</a>']
    url = colab_url(app.config.companion_repository_url, app.config.companion_branch, pagename)
    if url:
        links.append(f'<a class="companion-link" href="{html.escape(url)}">{t["colab"]}</a>')
    assignment = app.config.companion_exercises.get(pagename)
    if assignment:
        links.append(f'<a class="companion-link" href="{up}exercises/{assignment}/{assignment}.ipynb" download>'
                     f'{t["exercise"]}: {html.escape(assignment)}.ipynb</a>')
    return ('<div class="companion-launch" style="display:flex;gap:1.2em;flex-wrap:wrap;font-size:0.9em;'
            'margin:0 0 1em 0;padding:0.4em 0.8em;border-left:3px solid #7a9cc6;background:rgba(122,156,198,0.08)">'
            + "".join(links) + "</div>")


def language_switch(app: Sphinx, pagename: str) -> str:
    """Links to ``pagename`` in the book's other editions, which sit next to this one
    (``<site>/<language>/<pagename>.html``); empty when the book has one language."""
    here = _language(app)
    others = [lang for lang in app.config.companion_languages if lang != here]
    if not others:
        return ""
    up = "../" * (pagename.count("/") + 1)
    links = "".join(
        f'<a class="companion-lang-link" hreflang="{lang}" lang="{lang}" href="{up}{lang}/{pagename}.html" '
        f'title="{html.escape(LABELS.get(here, LABELS["en"])["switch_title"])}">'
        f'{html.escape(LABELS[here]["switch"] if len(others) == 1 else LANGUAGE_NAMES.get(lang, lang))}</a>'
        for lang in others)
    return ('<div class="companion-lang" style="text-align:right;font-size:0.9em;margin:0 0 0.6em 0">'
            + links + "</div>")


def add_launch_bar(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if doctree is None or "body" not in context:
        return
    bar = _bar(app, pagename) if _is_chapter(app, pagename) else ""
    context["body"] = language_switch(app, pagename) + bar + context["body"]


def copy_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Put the executed chapters and the exercise notebooks into the site."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    executed = Path(app.outdir).parent / "jupyter_execute"
    (out / "notebooks").mkdir(exist_ok=True)
    for docname in app.env.found_docs:
        if not _is_chapter(app, docname):
            continue
        name = docname.rsplit("/", 1)[-1]
        src = executed / f"{docname}.ipynb"
        if not src.is_file():  # not executed in this build: fall back to the paired source
            src = Path(app.srcdir, docname + ".ipynb")
        if src.is_file():
            shutil.copyfile(src, out / "notebooks" / f"{name}.ipynb")
    ex = Path(app.srcdir, "exercises")
    for assignment in set(app.config.companion_exercises.values()):
        if (ex / assignment).is_dir():
            shutil.copytree(ex / assignment, out / "exercises" / assignment, dirs_exist_ok=True)


def tidy_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Drop thebe's scripts (live code is off in this book, and its loader points at a CDN) and
    inline scripts that the theme adds twice: a second ``const THEBE_JS_URL`` is a console error.
    Also give the colour mode a default."""
    # the page template falls back to an empty colour mode, which the theme reports as invalid
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    files = context.get("script_files")
    if not files:
        return
    seen, kept = set(), []
    for js in files:
        body = (getattr(js, "attributes", None) or {}).get("body", "") or ""
        name = str(getattr(js, "filename", None) or js or "")
        if "THEBE_JS_URL" in body or "sphinx-thebe" in name:
            continue
        if body and (name, body) in seen:
            continue
        seen.add((name, body))
        kept.append(js)
    context["script_files"] = kept


# -- glued numbers in translated paragraphs ----------------------------------------------------
# Sphinx's i18n parses each translated paragraph as a small document of its own, and myst-nb
# parses it as plain Markdown, without the notebook's renderer (which myst-nb drops from the page's
# document when its parse ends), so a `{glue:text}` role there finds no glue data ("No key ...
# found in glue data"). The renderer is kept per page when myst-nb drops it and lent to those
# small documents: the Russian text then shows the numbers of the same executed notebook.
_RENDERERS: dict[str, object] = {}


class _KeepRenderer(dict):
    """A document's attributes that remember the notebook renderer myst-nb pops at the end of
    its parse."""

    docname = ""

    def pop(self, key, *default):
        value = super().pop(key, *default)
        if key == "nb_renderer" and value is not None:
            _RENDERERS[self.docname] = value
        return value


def _glue_in_translations() -> None:
    from myst_nb import sphinx_ as mystnb_sphinx
    from myst_nb.ext.glue import directives, roles, utils

    original = utils.retrieve_glue_data
    if getattr(original, "_companion", False):
        return
    parse = mystnb_sphinx.Parser.parse

    def parse_keeping_renderer(self, inputstring, document):
        attrs = _KeepRenderer(document.attributes)
        attrs.docname = getattr(getattr(document.settings, "env", None), "docname", "")
        document.attributes = attrs
        try:
            return parse(self, inputstring, document)
        finally:
            document.attributes = dict(attrs)

    def retrieve_glue_data(document, key):
        if "nb_renderer" in document or not str(document.current_source or "").endswith("<translated>"):
            return original(document, key)
        env = getattr(document.settings, "env", None)
        renderer = _RENDERERS.get(getattr(env, "docname", None))
        if renderer is None:
            return original(document, key)
        document["nb_renderer"] = renderer  # only while the role reads it: never pickled
        try:
            return original(document, key)
        finally:
            del document.attributes["nb_renderer"]

    retrieve_glue_data._companion = True
    mystnb_sphinx.Parser.parse = parse_keeping_renderer
    for module in (utils, roles, directives):
        if hasattr(module, "retrieve_glue_data"):
            module.retrieve_glue_data = retrieve_glue_data


def _add_static(app: Sphinx, config) -> None:
    config.html_static_path = list(config.html_static_path) + [str(Path(__file__).parent / "static")]


def setup(app: Sphinx) -> dict:
    app.add_config_value("companion_repository_url", "", "html")
    app.add_config_value("companion_branch", "main", "html")
    app.add_config_value("companion_exercises", {}, "html")
    app.add_config_value("companion_languages", [], "html")
    app.connect("html-page-context", add_launch_bar)
    app.connect("html-page-context", tidy_scripts, priority=900)
    # MathJax 2's Hub for the static widget manager (see static/mathjax-hub-shim.js)
    app.connect("config-inited", _add_static)
    app.add_js_file("mathjax-hub-shim.js", priority=600)
    app.connect("build-finished", copy_notebooks)
    _glue_in_translations()
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
