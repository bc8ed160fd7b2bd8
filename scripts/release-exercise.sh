#!/usr/bin/env bash
# Regenerate the student notebooks exercises/<assignment>/ from solutions/<assignment>/.
# Usage: bash scripts/release-exercise.sh ASSIGNMENT   (or "all")
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
names=("$@")
if [ "${names[0]:-}" = "all" ] || [ ${#names[@]} -eq 0 ]; then
  names=(); for d in solutions/*/; do names+=("$(basename "$d")"); done
fi
for a in "${names[@]}"; do
  [ -d "solutions/$a" ] || { echo "no assignment solutions/$a" >&2; exit 1; }
  nbgrader generate_assignment "$a" --force --no-db --log-level=WARN
  echo "released exercises/$a"
done
