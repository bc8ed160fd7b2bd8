#!/usr/bin/env bash
# Set up everything the book and the tests need, on a fresh machine or an existing checkout.
# Idempotent: a second run only checks. Needs Python >= 3.10 (3.11 tested), pip, and npm
# (for the offline MathJax and widget scripts the book serves itself). No other network than
# the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
[ -n "$PY" ] || { echo "setup: no python3 found; install Python 3.10+ first" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

# Reinstall only when requirements.txt or pyproject.toml changed since the last install.
stamp=.venv/.requirements.sha
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi

# Front-end assets the book serves from its own build (no CDN): MathJax 3 now; the widget
# manager and require.js are added by scripts/vendor-assets.sh.
bash scripts/vendor-assets.sh
