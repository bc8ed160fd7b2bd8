#!/usr/bin/env bash
# Set up, then run the whole test suite (library, exercises pipeline, book build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser test needs a chromium: Debian's package (never a browser download).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Debian's chromium for the browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
      || echo "test: could not install chromium; the browser test will be skipped" >&2
  else
    echo "test: no chromium found (install it, e.g. apt-get install chromium); the browser test will be skipped" >&2
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
exec python -m pytest "$@"
