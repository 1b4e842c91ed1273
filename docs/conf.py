"""Sphinx configuration of the mtl-meta site, built offline by `make docs` (tools/build_docs.py).

Sphinx with myst-nb renders the notebooks with their stored outputs (nothing is executed while the
site is built), MyST renders the Markdown tables under figures/, furo is the theme, and
sphinx-mathjax-offline serves MathJax from the site itself, so maths renders without a CDN.
"""
project = "mtl-meta"
author = "mtl-meta developers"
copyright = "2026 onwards, mtl-meta developers"

extensions = ["myst_nb", "sphinx-mathjax-offline"]
source_suffix = {".ipynb": "myst-nb", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "**/*.tmp"]

nb_execution_mode = "off"          # outputs are stored in the notebooks (`make outputs`)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3           # README-style links to #section-anchors resolve
suppress_warnings = ["myst.header", "misc.highlighting_failure", "mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = "mtl-meta"
html_static_path = []
html_show_sourcelink = False
html_copy_source = False
