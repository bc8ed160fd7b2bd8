#!/usr/bin/env bash
# Build the book, in Russian and in English, into _build/html/ru and _build/html/en
# (_build/html/index.html opens the Russian edition): set up, execute every chapter once (both
# editions render the same executed notebooks), then render each edition and fail on any warning
# or cell error. Executed chapters are reused only while src/convnets and results/ are unchanged.
# The Russian text comes from the catalogues in locales/ (scripts/i18n.sh; CONTRIBUTING.md).
# BOOK_SKIP_SETUP=1 skips the set-up check (the tests' offline build). BOOK_LANGUAGES="en" builds
# one edition only. Extra arguments go to sphinx-build (--all: re-read every page).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BOOK_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# the chapters draw their figures inline; a headless backend inherited from the caller (the
# tests set MPLBACKEND=Agg) would leave every plt.show() without an image
unset MPLBACKEND
languages=${BOOK_LANGUAGES:-ru en}
args=()
for a in "$@"; do
  if [ "$a" = --all ]; then args+=(-E); else args+=("$a"); fi
done
# jupyter-cache does not notice changes in imported modules or cached results: key the cache
# on them ourselves (scripts/book-cache-key.sh).
key=$(bash scripts/book-cache-key.sh)
mkdir -p _build
if [ -d _build/.jupyter_cache ] && [ "$(cat _build/.src-key 2>/dev/null)" != "$key" ]; then
  echo "build-book: src/convnets or results/ changed since the last build: re-executing every chapter"
  rm -rf _build/.jupyter_cache
fi
echo "$key" > _build/.src-key
# conf.py for sphinx-build, generated from _config.yml (jupyter-book build has no language switch)
python scripts/sphinx_conf.py
# Execute the chapters into the cache, one per CPU core at a time; each edition then only renders
# them (and reruns any chapter that failed, to report its error).
python scripts/execute_chapters.py
cache="$PWD/_build/.jupyter_cache"
# Sphinx re-reads a page only when its source changed, not when its notebook was executed again:
# an edition rendered from older executions is re-read in full (the two editions must show the
# same outputs).
cache_state=$(cat _build/.cache-state 2>/dev/null || echo none)  # written by execute_chapters.py
render() {  # render LANGUAGE: _build/<lang>/html (myst-nb keeps its files in _build/<lang>/)
  local lang=$1 extra=() fresh=()
  if [ "$(cat "_build/$lang/.cache-state" 2>/dev/null)" != "$cache_state" ]; then fresh=(-E); fi
  if [ "$lang" = ru ]; then
    extra=(-D "html_title=Свёрточные архитектуры: книга к курсу"
           -D "html_theme_options.search_bar_text=Поиск по книге..."
           -D "nb_code_prompt_show=Показать код ячейки" -D "nb_code_prompt_hide=Скрыть код ячейки")
  fi
  sphinx-build -b html -W -n --keep-going -q -D language="$lang" -D nb_execution_cache_path="$cache" \
    "${extra[@]}" "${fresh[@]}" -d "_build/$lang/doctrees" "${args[@]}" . "_build/$lang/html" &&
    echo "$cache_state" > "_build/$lang/.cache-state"
}
pids=()
for lang in $languages; do
  render "$lang" > "_build/$lang.log" 2>&1 &
  pids+=($!)
done
status=0
set -- $languages
for pid in "${pids[@]}"; do
  if ! wait "$pid"; then
    echo "build-book: the $1 edition failed:" >&2; cat "_build/$1.log" >&2; status=1
  else
    cat "_build/$1.log"
  fi
  shift
done
[ "$status" = 0 ] || exit 1
# assemble the site: one folder per language, the first language at the root's index
rm -rf _build/html.new && mkdir -p _build/html.new
for lang in $languages; do cp -a "_build/$lang/html" "_build/html.new/$lang"; done
first=${languages%% *}
cat > _build/html.new/index.html <<HTML
<!DOCTYPE html>
<html lang="$first"><head><meta charset="utf-8"><title>Convolutional architectures</title>
<meta http-equiv="refresh" content="0; url=$first/index.html">
<link rel="canonical" href="$first/index.html"></head>
<body><a href="$first/index.html">$first/index.html</a></body></html>
HTML
rm -rf _build/html && mv _build/html.new _build/html
echo "build-book: open _build/html/index.html"
