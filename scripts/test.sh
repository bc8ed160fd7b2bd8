#!/usr/bin/env bash
# Set up, then run the whole test suite (library, exercises pipeline, book build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec python -m pytest "$@"
