#!/usr/bin/env bash
# Build the book into _build/html: set up, then execute every chapter and fail on any warning
# or cell error. Executed chapters are reused only while src/convnets and results/ are
# unchanged. BOOK_SKIP_SETUP=1 skips the set-up check (the tests' offline build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BOOK_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# the chapters draw their figures inline; a headless backend inherited from the caller (the
# tests set MPLBACKEND=Agg) would leave every plt.show() without an image
unset MPLBACKEND
# jupyter-cache does not notice changes in imported modules or cached results: key the cache
# on them ourselves (scripts/book-cache-key.sh).
key=$(bash scripts/book-cache-key.sh)
mkdir -p _build
if [ -d _build/.jupyter_cache ] && [ "$(cat _build/.src-key 2>/dev/null)" != "$key" ]; then
  echo "build-book: src/convnets or results/ changed since the last build: re-executing every chapter"
  rm -rf _build/.jupyter_cache
fi
echo "$key" > _build/.src-key
# Execute the chapters into the cache, one per CPU core at a time; the build then renders them
# (and reruns any chapter that failed, to report its error).
python scripts/execute_chapters.py
jupyter-book build . -W -n --keep-going "$@"
echo "build-book: open _build/html/index.html"
