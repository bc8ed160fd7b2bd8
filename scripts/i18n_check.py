"""Check (and pre-fill) the Russian edition's catalogues, ``locales/ru/LC_MESSAGES/book/*.po``.

A translated entry must carry over, unchanged, everything that is not prose: MyST roles with
their targets (``{glue:text}`key```, ``{footcite}`key```), inline code, math, numbers, link
targets, and the lecture's slide titles quoted in «». An entry is complete when it is translated
and not fuzzy. ``scripts/i18n.sh check`` runs this; tests/test_i18n.py runs it on every catalogue.

    python scripts/i18n_check.py [PAGE ...]      report; exit 1 on any problem
    python scripts/i18n_check.py --stats         one line per catalogue
    python scripts/i18n_check.py --fill-verbatim copy entries with nothing to translate (display
                                                 math, a term that is already Russian)
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locales" / "ru" / "LC_MESSAGES"

ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
CODE = re.compile(r"(?<![`}])(`+)(?!`)(.+?)(?<!`)\1(?!`)")
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(?:\\.|[^$\\])+?\$")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>|(?<![(<])\b(https?://[^\s)>]+)")
QUOTE = re.compile(r"«[^»]*»")
NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?")
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def invariants(text: str) -> dict[str, Counter]:
    """What must be the same in an entry's English and Russian text."""
    out: dict[str, Counter] = {}
    rest = text
    for name, rx in (("role", ROLE), ("math", DISPLAY_MATH), ("code", CODE), ("math ", INLINE_MATH)):
        found = [m.group(0) for m in rx.finditer(rest)]
        out.setdefault(name.strip(), Counter()).update(found)
        rest = rx.sub(" ", rest)
    out["link"] = Counter(next(g for g in m.groups() if g) for m in LINK_TARGET.finditer(rest))
    rest = LINK_TARGET.sub(" ", rest)
    out["«»"] = Counter(QUOTE.findall(rest))
    rest = QUOTE.sub(" ", rest)
    out["number"] = Counter(n.replace("−", "-") for n in NUMBER.findall(rest))
    return out


def mismatches(msgid: str, msgstr: str) -> list[str]:
    """The invariants of ``msgid`` that ``msgstr`` lost or changed (slide quotes: only lost)."""
    a, b = invariants(msgid), invariants(msgstr)
    problems = []
    for kind in a:
        if kind == "«»":
            lost = a[kind] - b[kind]
            added = Counter()
        else:
            lost, added = a[kind] - b[kind], b[kind] - a[kind]
        if lost:
            problems.append(f"{kind} missing in the translation: {', '.join(lost)}")
        if added:
            problems.append(f"{kind} not in the English text: {', '.join(added)}")
    return problems


def nothing_to_translate(msgid: str) -> bool:
    """Display math, or a text that is already Russian (the glossary's Russian column), or only
    roles, code, math and numbers."""
    rest = msgid
    for rx in (ROLE, DISPLAY_MATH, CODE, INLINE_MATH, QUOTE, LINK_TARGET):
        rest = rx.sub(" ", rest)
    stripped = msgid.strip()
    if stripped and msgid.startswith("\n") and "\\" in msgid and not re.search(r"\\text\{[^}]*[A-Za-z]{3}", msgid):
        return True  # a display-math block
    words = re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", rest))
    return not words


def catalogues(pages: list[str]) -> list[Path]:
    if not pages:
        return sorted(LOCALE.rglob("*.po"))
    out = []
    for p in pages:
        path = Path(p)
        if path.suffix != ".po":
            path = LOCALE / (p.removesuffix(".md") + ".po")
        elif not path.is_absolute():
            path = ROOT / path
        if not path.is_file():
            raise SystemExit(f"i18n: no catalogue {path}: run `bash scripts/i18n.sh update` first")
        out.append(path)
    return out


def report(path: Path) -> list[str]:
    po = polib.pofile(str(path))
    rel = path.relative_to(ROOT)
    lines = []
    for e in po:
        if e.obsolete:
            continue
        where = f"{rel}:{e.linenum} ({e.occurrences[0][0]}:{e.occurrences[0][1]})" if e.occurrences else f"{rel}:{e.linenum}"
        head = e.msgid.strip().splitlines()[0][:70] if e.msgid.strip() else "(blank)"
        if not e.msgstr:
            lines.append(f"{where}: untranslated: {head}")
        elif "fuzzy" in e.flags:
            lines.append(f"{where}: fuzzy (the English text changed; check the translation and drop the flag): {head}")
        else:
            for problem in mismatches(e.msgid, e.msgstr):
                lines.append(f"{where}: {problem}: {head}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="*")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--fill-verbatim", action="store_true")
    args = ap.parse_args(argv)
    paths = catalogues(args.pages)
    if not paths:
        print("i18n: no catalogues in locales/: run `bash scripts/i18n.sh update`", file=sys.stderr)
        return 1
    if args.fill_verbatim:
        for path in paths:
            po = polib.pofile(str(path), wrapwidth=100)
            changed = False
            for e in po:
                if not e.obsolete and not e.msgstr and nothing_to_translate(e.msgid):
                    e.msgstr = e.msgid
                    changed = True
            if changed:
                po.save(str(path))
        return 0
    if args.stats:
        for path in paths:
            po = polib.pofile(str(path))
            live = [e for e in po if not e.obsolete]
            fuzzy = sum("fuzzy" in e.flags for e in live)
            untranslated = sum(not e.msgstr for e in live)
            print(f"{path.relative_to(ROOT)}\t{len(live)} entries\t{len(live) - fuzzy - untranslated} translated"
                  f"\t{fuzzy} fuzzy\t{untranslated} untranslated")
        return 0
    problems = [line for path in paths for line in report(path)]
    for line in problems:
        print(line)
    print(f"i18n: {len(paths)} catalogue(s), {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
