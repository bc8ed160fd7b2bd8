"""Interactive explorers for the chapters, one module per topic.

Each explorer has two forms: a live one (ipywidgets callbacks; needs a running kernel, as in
Jupyter) and a static one (precomputed frames switched on the page by a slider linked on the
client), which works in the rendered book where there is no kernel.
"""
