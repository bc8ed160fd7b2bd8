#!/usr/bin/env bash
# Fetch the book's front-end assets from the npm registry into book/_vendor (not committed), so
# that no page loads anything from a CDN:
#   mathjax/  MathJax 3 (math rendering)
#   widgets/  require.js and @jupyter-widgets/html-manager's embed-amd.js (static ipywidgets),
#             plus the manager's font files, which it requests relative to the page: the site
#             root and book/ (where the chapters live) both get a copy, via book/_vendor_root.
set -euo pipefail
cd "$(dirname "$0")/.."
V=book/_vendor
SPEC="mathjax@3 requirejs@2 @jupyter-widgets/html-manager@1"
LAYOUT=2  # bump when the copied layout changes, so that existing checkouts refresh
if [ -f "$V/.complete" ] && [ "$(cat "$V/.complete")" = "$SPEC layout $LAYOUT" ]; then exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "setup: npm is needed to fetch MathJax and the widget scripts (apt-get install npm)" >&2; exit 1; }
echo "setup: fetching MathJax and the widget scripts from npm"
rm -rf .npm-vendor "$V"
mkdir -p .npm-vendor "$V/mathjax/output" "$V/mathjax/input/tex" "$V/widgets"
# shellcheck disable=SC2086
npm install --silent --no-audit --no-fund --prefix .npm-vendor $SPEC >/dev/null
NM=.npm-vendor/node_modules
cp "$NM/mathjax/es5/tex-chtml.js" "$V/mathjax/"
cp -r "$NM/mathjax/es5/output/chtml" "$V/mathjax/output/"
cp -r "$NM/mathjax/es5/input/tex/extensions" "$V/mathjax/input/tex/"
cp "$NM/requirejs/require.js" "$V/widgets/require.js"
cp "$NM/@jupyter-widgets/html-manager/dist/embed-amd.js" "$V/widgets/embed-amd.js"
# the manager asks for its fonts at @jupyter-widgets/html-manager/dist/ relative to the page
# (book/_vendor_root is copied to the site root; the chapters' pages are in book/)
R=book/_vendor_root
rm -rf "$R"
for d in "$R/@jupyter-widgets/html-manager/dist" "$R/book/@jupyter-widgets/html-manager/dist"; do
  mkdir -p "$d"
  find "$NM/@jupyter-widgets/html-manager/dist" -maxdepth 1 \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$d/" \;
done
echo "$SPEC layout $LAYOUT" > "$V/.complete"
