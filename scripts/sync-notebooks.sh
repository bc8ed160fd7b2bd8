#!/usr/bin/env bash
# Write the paired notebook book/<chapter>.ipynb (no outputs) of every chapter book/<chapter>.md,
# so that Colab and JupyterLab users can open the chapters as notebooks. Run after editing a
# chapter, and commit both; tests/test_notebooks_paired.py checks that they agree.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
for md in book/*.md; do
  grep -q '^kernelspec:' "$md" || continue
  jupytext --quiet --to ipynb --update --output "${md%.md}.ipynb" "$md"
done
