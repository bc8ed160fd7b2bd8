#!/usr/bin/env bash
# Fetch the book's front-end assets from the npm registry into book/_vendor (not committed):
# MathJax 3 (math rendering without a CDN).
set -euo pipefail
cd "$(dirname "$0")/.."
V=book/_vendor
if [ -f "$V/.complete" ]; then exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "setup: npm is needed to fetch MathJax (apt-get install npm)" >&2; exit 1; }
echo "setup: fetching MathJax from npm"
rm -rf .npm-vendor "$V"
mkdir -p .npm-vendor "$V/mathjax"
npm install --silent --no-audit --no-fund --prefix .npm-vendor mathjax@3 >/dev/null
MJ=.npm-vendor/node_modules/mathjax/es5
cp "$MJ/tex-chtml.js" "$V/mathjax/"
mkdir -p "$V/mathjax/output" "$V/mathjax/input/tex"
cp -r "$MJ/output/chtml" "$V/mathjax/output/"
cp -r "$MJ/input/tex/extensions" "$V/mathjax/input/tex/"
touch "$V/.complete"
