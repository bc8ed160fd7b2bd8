"""The Russian edition's catalogues: complete (every paragraph translated, nothing fuzzy), faithful
where they must be (roles, code, math, numbers, link targets and slide titles carried over), and
in step with the English text (a new or changed paragraph without its translation fails)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCALE = ROOT / "locales" / "ru" / "LC_MESSAGES"

spec = importlib.util.spec_from_file_location("i18n_check", ROOT / "scripts" / "i18n_check.py")
i18n = importlib.util.module_from_spec(spec)
spec.loader.exec_module(i18n)


def pages() -> list[str]:
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for c in toc["chapters"]]


def test_every_page_has_a_catalogue():
    missing = [p for p in pages() if not (LOCALE / f"{p}.po").is_file()]
    assert not missing, f"no Russian catalogue for {missing}: run `bash scripts/i18n.sh update`"


@pytest.mark.parametrize("page", pages())
def test_catalogue_is_complete_and_faithful(page):
    path = LOCALE / f"{page}.po"
    if not path.is_file():
        pytest.fail(f"no catalogue {path.relative_to(ROOT)}")
    problems = i18n.report(path)
    assert not problems, (f"{len(problems)} problem(s) in {path.relative_to(ROOT)} (translate, then "
                          "`bash scripts/i18n.sh check`):\n" + "\n".join(problems[:15]))


def test_msgfmt_accepts_every_catalogue():
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt (Debian's gettext) is not installed; polib parsed the catalogues above")
    for path in sorted(LOCALE.rglob("*.po")):
        proc = subprocess.run([msgfmt, "--check-format", "--statistics", "-o", "/dev/null", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr}"
        assert "untranslated" not in proc.stderr and "fuzzy" not in proc.stderr, f"{path.name}: {proc.stderr}"


# -- the check itself catches what it must (independent of the catalogues' state)

@pytest.mark.parametrize("msgid, msgstr, kind", [
    ("Accuracy {glue:text}`acc:.3f` here.", "Точность здесь.", "role"),
    ("Accuracy {glue:text}`acc:.3f` here.", "Точность {glue:text}`acc:.2f` здесь.", "role"),
    ("Call `model.eval()` first.", "Сначала вызовите model.eval().", "code"),
    ("The variance $\\sigma^2$ of $x$.", "Дисперсия $\\sigma$ величины $x$.", "math"),
    ("An error of 6.67 % in 2014.", "Ошибка 6,67 % в 2014 году.", "number"),
    ("As in «ResNet (2015)», see [the paper](https://arxiv.org/abs/1512.03385).",
     "Как на слайде, см. [статью](https://arxiv.org/abs/1512.03385).", "«»"),
    ("See [the paper](https://arxiv.org/abs/1512.03385).", "См. [статью](https://arxiv.org/abs/1512.0338).", "link"),
])
def test_check_flags_a_lost_or_changed_invariant(msgid, msgstr, kind):
    problems = i18n.mismatches(msgid, msgstr)
    assert any(p.startswith(kind) for p in problems), (kind, problems)


def test_check_accepts_a_faithful_translation():
    msgid = ("With batch norm the net reaches {glue:text}`acc:.3f` at lr 0.1 (`lr=0.1`, $\\eta = 0.1$), "
             "as «Batch Normalization» says {footcite}`ioffe2015batch`; see [the paper](https://arxiv.org/abs/1502.03167).")
    msgstr = ("С пакетной нормализацией сеть достигает {glue:text}`acc:.3f` при темпе 0.1 (`lr=0.1`, "
              "$\\eta = 0.1$), как и говорит «Batch Normalization» {footcite}`ioffe2015batch`; "
              "см. [статью](https://arxiv.org/abs/1502.03167).")
    assert i18n.mismatches(msgid, msgstr) == []


def test_untranslated_and_fuzzy_entries_are_reported(tmp_path):
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="One.", msgstr="", occurrences=[("book/x.md", "3")]))
    po.append(polib.POEntry(msgid="Two.", msgstr="Два.", flags=["fuzzy"]))
    po.append(polib.POEntry(msgid="Three.", msgstr="Три."))
    path = tmp_path / "x.po"
    po.save(str(path))
    i18n.ROOT = tmp_path  # report() prints paths relative to the project root
    try:
        lines = i18n.report(path)
    finally:
        i18n.ROOT = ROOT
    assert len(lines) == 2 and "untranslated" in lines[0] and "fuzzy" in lines[1], lines


def test_display_math_and_russian_terms_need_no_translation():
    assert i18n.nothing_to_translate("\n\\mu_j = \\frac1n \\sum_{i=1}^n x_{ij}\n")
    assert i18n.nothing_to_translate("пакетная нормализация")
    assert not i18n.nothing_to_translate("batch normalization")
    assert not i18n.nothing_to_translate("\n\\text{accuracy} = \\frac{a}{b}\n")


@pytest.mark.slow
def test_catalogues_are_in_step_with_the_english_text(tmp_path):
    """Extract the English text now (as `scripts/i18n.sh update` does) and compare: every paragraph
    of every page must have its entry in the committed catalogue."""
    subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "sphinx_conf.py")], cwd=ROOT, check=True)
    out = tmp_path / "gettext"
    proc = subprocess.run([str(BIN / "sphinx-build"), "-b", "gettext", "-q", "-D", "nb_execution_mode=off",
                           "-d", str(tmp_path / "doctrees"), str(ROOT), str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stale = []
    for pot in sorted(out.rglob("*.pot")):
        page = pot.relative_to(out).with_suffix("").as_posix()
        po_path = LOCALE / f"{page}.po"
        known = {e.msgid for e in polib.pofile(str(po_path)) if not e.obsolete} if po_path.is_file() else set()
        for e in polib.pofile(str(pot)):
            if e.msgid.strip() and e.msgid not in known:
                stale.append(f"{page}: {e.msgid.strip()[:80]}")
    assert not stale, (f"{len(stale)} English paragraph(s) with no entry in the catalogues: run "
                       "`bash scripts/i18n.sh update` and translate them:\n" + "\n".join(stale[:15]))
