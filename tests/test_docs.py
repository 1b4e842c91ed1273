"""The companion's reading surface: notebooks that store current outputs, and the site built from them."""
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


nb_outputs = _tool("nb_outputs")
build_docs = _tool("build_docs")


def _nb(*cells):
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
                       "outputs": [], "source": src} for i, src in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def test_a_notebook_whose_code_changed_after_its_outputs_is_stale(tmp_path, capsys):
    nb = _nb("x = 1", "print(x)")
    assert nb_outputs.stale_reason(nb) == "has no record of executing its code (outputs never made)"
    nb["metadata"]["mtl_meta"] = {"code_sha256": nb_outputs.code_sha256(nb)}
    assert nb_outputs.stale_reason(nb) is None
    nb["cells"][1]["source"] = "print(x + 1)"
    assert nb_outputs.stale_reason(nb) == "code changed after its outputs were made"
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps(nb))
    assert nb_outputs.main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("run `make outputs`") and str(path) in err[0]


def test_markdown_edits_do_not_make_outputs_stale():
    nb = _nb("x = 1")
    nb["cells"].append({"cell_type": "markdown", "id": "m", "metadata": {}, "source": "prose"})
    before = nb_outputs.code_sha256(nb)
    nb["cells"][-1]["source"] = "better prose"
    assert nb_outputs.code_sha256(nb) == before


def test_execute_stores_outputs_figures_and_the_code_hash(tmp_path):
    nb = _nb("print('hello')",
             "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]);",
             "#| slow\nraise RuntimeError('slow cells are not executed')",
             "1 + 1")
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps(nb))
    nb_outputs.execute(path, timeout=120)
    done = json.loads(path.read_text())
    outs = [c["outputs"] for c in done["cells"]]
    assert "".join(outs[0][0]["text"]) == "hello\n"
    assert any("image/png" in o.get("data", {}) for o in outs[1])
    assert outs[2] == []                                   # the slow cell was skipped, not run
    assert "".join(outs[3][0]["data"]["text/plain"]) == "2"
    assert all(c["execution_count"] is None for c in done["cells"])
    assert nb_outputs.stale_reason(done) is None
    assert "".join(done["cells"][2]["source"]).startswith("#| slow")  # the source is kept as written


def test_library_notebooks_are_the_ones_in_nbs():
    names = {p.name for p in nb_outputs.library_notebooks(REPO)}
    assert "index.ipynb" in names and "paper.ipynb" in names
    assert not any(p.parent.name == "experiments" for p in nb_outputs.library_notebooks(REPO))


def test_every_notebook_is_in_the_reading_order():
    order = build_docs.reading_order(REPO)
    assert order[0] == "nbs/paper.ipynb"
    assert set(build_docs.site_notebooks(REPO)) <= set(order)
    assert all((REPO / p).is_file() for p in order)


def test_a_notebook_missing_from_the_reading_order_stops_the_build(tmp_path):
    root = tmp_path / "repo"
    (root / "nbs").mkdir(parents=True)
    (root / "figures").mkdir()
    index = _nb()
    index["cells"] = [{"cell_type": "markdown", "id": "m", "metadata": {},
                       "source": "## Reading order\n\n1. [A](nbs/a.ipynb)\n"}]
    (root / "nbs" / "index.ipynb").write_text(json.dumps(index))
    for name in ("a", "b"):
        (root / "nbs" / f"{name}.ipynb").write_text(json.dumps(_nb("1")))
    with pytest.raises(SystemExit, match=r"not in the reading order of nbs/index.ipynb: nbs/b.ipynb"):
        build_docs.stage(tmp_path / "src", root)


def test_the_site_check_finds_dead_links_and_cdn_maths(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok.png").write_bytes(b"png")
    (site / "index.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<img src="ok.png"><img src="missing.png"><a href="nbs/gone.html#x">x</a><a href="#top">t</a>'
        '<a href="https://arxiv.org/abs/2106.09017">paper</a>')
    problems = build_docs.check_site(site, REPO)
    text = "\n".join(problems)
    assert "img -> missing.png resolves to nothing" in text
    assert "a -> nbs/gone.html#x resolves to nothing" in text
    assert "maths from a CDN" in text and "no page loads MathJax from the site itself" in text
    assert "ok.png" not in text and "arxiv" not in text and "#top" not in text
    assert "nbs/paper.ipynb: no page" in text           # every source notebook needs a page


@pytest.mark.skipif(shutil.which("sphinx-build") is None and
                    importlib.util.find_spec("sphinx") is None, reason="sphinx not installed")
def test_the_site_builds_offline_with_every_page_link_and_local_maths(tmp_path):
    out = tmp_path / "site"
    unresolved = build_docs.build(out, REPO)
    assert unresolved == []
    assert build_docs.check_site(out, REPO) == []
    for rel in build_docs.site_notebooks(REPO):
        assert (out / Path(rel).with_suffix(".html")).is_file()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Reading order" in index and "nbs/paper.html" in index
    paper = (out / "nbs" / "paper.html").read_text(encoding="utf-8")
    assert "mathjax" in paper.lower() and "cdn.jsdelivr" not in paper
    assert "\\lambda\\tau" in paper                      # maths kept for MathJax to typeset in the page


def test_every_module_docstring_is_a_whole_sentence():
    import ast
    for path in sorted((REPO / "mtl_meta").glob("*.py")):
        if path.name in ("__init__.py", "_modidx.py"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc[0].isupper() and doc.rstrip().endswith("."), f"{path.name}: {doc!r}"


def test_no_file_outside_the_repository_is_cited():
    import subprocess
    found = subprocess.run(["git", "grep", "-l", "-e", "PAPER.md", "-e", "shared/docs", "--", ".",
                            ":!tests/test_docs.py"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert found == []


def test_tensorflow_start_up_chatter_is_not_stored(tmp_path):
    nb = _nb("import sys\nprint('E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory', file=sys.stderr)\n"
             "print('a real warning', file=sys.stderr)")
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps(nb))
    nb_outputs.execute(path, timeout=120)
    outs = json.loads(path.read_text())["cells"][0]["outputs"]
    assert len(outs) == 1 and "".join(outs[0]["text"]) == "a real warning\n"
