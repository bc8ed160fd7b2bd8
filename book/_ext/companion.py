"""Sphinx extension for the course companion: launch links on every chapter page.

Each chapter page gets a bar with

- "Download notebook": the executed chapter as an ``.ipynb`` (copied into the site under
  ``notebooks/``), which JupyterLab, Notebook 7 and Colab (File > Upload notebook) open;
- "Open in Colab": when ``companion_repository_url`` names a GitHub repository, a link to the
  paired ``book/<chapter>.ipynb`` committed there (Colab cannot open the ``.md`` source);
- "Exercise": the chapter's assignment notebook (``companion_exercises`` maps a chapter to its
  assignment), copied into the site under ``exercises/``.
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


def _bar(app: Sphinx, pagename: str) -> str:
    depth = pagename.count("/")
    up = "../" * depth
    name = pagename.rsplit("/", 1)[-1]
    links = [f'<a class="companion-link" href="{up}notebooks/{name}.ipynb" download>Download notebook (.ipynb)</a>']
    url = colab_url(app.config.companion_repository_url, app.config.companion_branch, pagename)
    if url:
        links.append(f'<a class="companion-link" href="{html.escape(url)}">Open in Colab</a>')
    assignment = app.config.companion_exercises.get(pagename)
    if assignment:
        links.append(f'<a class="companion-link" href="{up}exercises/{assignment}/{assignment}.ipynb" download>'
                     f'Exercise: {html.escape(assignment)}.ipynb</a>')
    return ('<div class="companion-launch" style="display:flex;gap:1.2em;flex-wrap:wrap;font-size:0.9em;'
            'margin:0 0 1em 0;padding:0.4em 0.8em;border-left:3px solid #7a9cc6;background:rgba(122,156,198,0.08)">'
            + "".join(links) + "</div>")


def add_launch_bar(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if doctree is None or "body" not in context or not _is_chapter(app, pagename):
        return
    context["body"] = _bar(app, pagename) + context["body"]


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


def _add_static(app: Sphinx, config) -> None:
    config.html_static_path = list(config.html_static_path) + [str(Path(__file__).parent / "static")]


def setup(app: Sphinx) -> dict:
    app.add_config_value("companion_repository_url", "", "html")
    app.add_config_value("companion_branch", "main", "html")
    app.add_config_value("companion_exercises", {}, "html")
    app.connect("html-page-context", add_launch_bar)
    app.connect("html-page-context", tidy_scripts, priority=900)
    # MathJax 2's Hub for the static widget manager (see static/mathjax-hub-shim.js)
    app.connect("config-inited", _add_static)
    app.add_js_file("mathjax-hub-shim.js", priority=600)
    app.connect("build-finished", copy_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
