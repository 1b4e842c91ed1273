"""Sphinx configuration of the mtl-meta site, built offline by `make docs` (tools/build_docs.py).

Sphinx with myst-nb renders the notebooks with their stored outputs (nothing is executed while the
site is built), MyST renders the Markdown tables under figures/, furo is the theme, and
sphinx-mathjax-offline serves MathJax from the site itself, so maths renders without a CDN. The staged
notebooks document their exported names with the Python domain's directives (tools/build_docs.py
writes them), and _static/site.css wraps long code lines within the page.
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
nb_code_prompt_show = "Show {type}"  # the folded source beneath each documented name
nb_code_prompt_hide = "Hide {type}"
python_maximum_signature_line_length = 90   # longer signatures put one parameter per line
add_module_names = False           # `train(...)`, not `mtl_meta.api.train(...)`: the page names the module
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3           # README-style links to #section-anchors resolve
suppress_warnings = ["myst.header", "misc.highlighting_failure", "mystnb.unknown_mime_type"]

html_theme = "furo"
html_title = "mtl-meta"
html_static_path = ["_static"]   # relative to this folder (docs/)
html_css_files = ["site.css"]      # long code lines wrap within the page
html_show_sourcelink = False
html_copy_source = False
