#!/usr/bin/env bash
# The Russian edition's catalogues (locales/ru/LC_MESSAGES/book/<page>.po), one per page.
#
#   bash scripts/i18n.sh update          extract the English text of every page (no execution)
#                                        and merge it into the catalogues: new paragraphs appear
#                                        untranslated, changed ones fuzzy (with the old translation)
#   bash scripts/i18n.sh check [PAGE...] untranslated, fuzzy or mismatched entries (roles, code,
#                                        math, numbers must be the same in both languages); exit 1
#                                        if any. PAGE: book/02-normalization or a .po path
#   bash scripts/i18n.sh stats           one line per catalogue
#
# See CONTRIBUTING.md, "Translating".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
cmd=${1:-check}; shift || true
case "$cmd" in
  update)
    python scripts/sphinx_conf.py
    rm -rf _build/gettext && mkdir -p _build
    # the text only: no execution (glued numbers are not in the catalogues; their roles are)
    sphinx-build -b gettext -q -D nb_execution_mode=off -d _build/gettext/.doctrees . _build/gettext \
      2> _build/gettext.log || { cat _build/gettext.log >&2; exit 1; }
    sphinx-intl update -p _build/gettext -d locales -l ru -w 100 >/dev/null
    python scripts/i18n_check.py --fill-verbatim
    python scripts/i18n_check.py --stats
    ;;
  check) python scripts/i18n_check.py "$@" ;;
  stats) python scripts/i18n_check.py --stats ;;
  *) echo "usage: bash scripts/i18n.sh update | check [PAGE...] | stats" >&2; exit 2 ;;
esac
