#!/usr/bin/env bash
# Print the key of the book's execution cache: jupyter-cache notices only a change in a chapter's
# own cells, so the key covers what the chapters import and read besides (src/convnets and the
# cached results in results/). Used by scripts/build-book.sh and by the tests' book build.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  find src/convnets -name '*.py' -print0
  if [ -d results ]; then find results -type f -print0; fi
} | sort -z | xargs -0 cat | sha256sum | cut -d' ' -f1
