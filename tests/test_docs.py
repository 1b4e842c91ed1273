"""The companion's reading surface: notebooks that store current outputs, and the site built from them."""
import importlib.util
import json
import re
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
    assert nb_outputs.stale_reason(nb) == "has no record of the modules its code ran"
    nb["metadata"]["mtl_meta"]["modules"] = nb_outputs.module_hashes(nb)
    assert nb_outputs.stale_reason(nb) is None
    nb["cells"][1]["source"] = "print(x + 1)"
    assert nb_outputs.stale_reason(nb) == "code changed after its outputs were made"
    path = tmp_path / "t.ipynb"
    path.write_text(json.dumps(nb))
    assert nb_outputs.main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("run `make outputs`") and str(path) in err[0]


def test_a_change_to_a_module_the_notebook_runs_makes_it_stale(tmp_path):
    "A notebook's outputs also depend on the package modules its code imports, directly or through other modules."
    pkg = tmp_path / "mtl_meta"
    pkg.mkdir()
    (pkg / "core.py").write_text("X = 1\n")
    (pkg / "data.py").write_text("from .core import X\n")
    (pkg / "api.py").write_text("def f():\n    from mtl_meta import data\n")
    (pkg / "unused.py").write_text("Y = 2\n")
    nb = _nb("from mtl_meta.api import f", "f()")
    assert nb_outputs.imported_modules(nb, pkg) == ["api", "core", "data"]
    nb["metadata"]["mtl_meta"] = {"code_sha256": nb_outputs.code_sha256(nb),
                                  "modules": nb_outputs.module_hashes(nb, pkg)}
    assert nb_outputs.stale_reason(nb, pkg) is None
    (pkg / "unused.py").write_text("Y = 3\n")              # a module it never runs: still current
    assert nb_outputs.stale_reason(nb, pkg) is None
    (pkg / "core.py").write_text("X = 2\n")                # two imports away
    assert nb_outputs.stale_reason(nb, pkg) == "mtl_meta/core.py changed after its outputs were made"


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


needs_sphinx = pytest.mark.skipif(shutil.which("sphinx-build") is None and importlib.util.find_spec("sphinx") is None,
                                  reason="sphinx not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site built once from the repository (about a minute) for all workers (`built_once`), read by the tests."
    from conftest import built_once
    folder, unresolved = built_once(tmp_path_factory, "docs-site", lambda folder: build_docs.build(folder / "site", REPO))
    return folder / "site", unresolved


@needs_sphinx
def test_the_site_builds_offline_with_every_page_link_and_local_maths(site):
    out, unresolved = site
    assert unresolved == []
    assert build_docs.check_site(out, REPO) == []
    for rel in build_docs.site_notebooks(REPO):
        assert (out / Path(rel).with_suffix(".html")).is_file()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Reading order" in index and "nbs/paper.html" in index
    paper = (out / "nbs" / "paper.html").read_text(encoding="utf-8")
    assert "mathjax" in paper.lower() and "cdn.jsdelivr" not in paper
    assert "\\lambda\\tau" in paper                      # maths kept for MathJax to typeset in the page


@needs_sphinx
def test_no_page_shows_a_machine_path_or_an_environment_warning(site):
    out, _ = site
    assert build_docs.page_leaks(out) == []


def _first_words(obj) -> str:
    "The first words of an object's docstring (up to the first punctuation, which a page may typeset differently)."
    return re.match(r"[\w ]+", obj.__doc__.strip()).group(0).strip()


def _page_text(page: Path) -> str:
    parser = build_docs._Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return "".join(parser.text)


@needs_sphinx
def test_pages_read_like_nbdev_docs(site):
    out, _ = site
    for page in sorted((out / "nbs").rglob("*.html")) + sorted((out / "figures" / "runs").rglob("*.html")):
        assert "#|" not in _page_text(page), f"{page.relative_to(out)} shows a directive"
    adapt = (out / "nbs" / "06_adapt.html").read_text(encoding="utf-8")
    # an exported function: its signature and docstring rendered, its source folded beneath
    assert 'id="mtl_meta.adapt.logreg_torch"' in adapt
    assert _first_words(importlib.import_module("mtl_meta.adapt").logreg_torch) in adapt
    assert adapt.count("<details") >= 5
    # a patched method is documented as Cls.f, a parameter comment as a row of the parameter table
    assert 'id="mtl_meta.train.Trainer.fit"' in (out / "nbs" / "07_train.html").read_text(encoding="utf-8")
    api = (out / "nbs" / "12_api.html").read_text(encoding="utf-8")
    assert 'id="mtl_meta.api.train"' in api and "output folder for checkpoint.pt" in api
    # a module's name as a title is code, not bold
    main = (out / "nbs" / "11a_main.html").read_text(encoding="utf-8")
    assert "<strong>main</strong>" not in main and "__main__" in main.split("</h1>")[0]
    # long lines wrap within the page
    assert "site.css" in adapt and "pre-wrap" in (out / "_static" / "site.css").read_text()


@needs_sphinx
def test_the_api_index_lists_every_public_name_with_a_link(site):
    out, _ = site
    api = (out / "api.html").read_text(encoding="utf-8")
    assert 'href="api.html"' in (out / "index.html").read_text(encoding="utf-8")
    for path in sorted((REPO / "mtl_meta").glob("*.py")):
        if path.stem in ("__init__", "_modidx"):
            continue
        module = importlib.import_module(f"mtl_meta.{path.stem}")
        for name in getattr(module, "__all__", []):
            assert f"mtl_meta.{path.stem}.{name}\"" in api or f">{name}<" in api, f"{path.stem}.{name}"
    assert 'href="nbs/06_adapt.html#mtl_meta.adapt.logreg_torch"' in api


@needs_sphinx
def test_an_executed_run_page_names_the_code_that_ran_it(site):
    out, _ = site
    runs = sorted(p for p in (REPO / "figures" / "runs").glob("*/run.json") if any(p.parent.glob("*.ipynb")))
    if not runs:
        pytest.skip("no executed run committed")
    rec = json.loads(runs[0].read_text())
    page = next((out / runs[0].parent.relative_to(REPO)).glob("*.html"))
    text = _page_text(page)
    assert "Executed by mtl-meta reproduce" in text and rec["finished"][:10] in text
    if rec.get("code", {}).get("commit"):
        assert rec["code"]["commit"][:7] in text
    assert "nbs/experiments/" in page.read_text(encoding="utf-8")


def test_staging_strips_directives_and_documents_exported_names():
    nb = _nb("#| default_exp adapt", "#| hide\nsecret = 1",
             "#| export\ndef mean_ci95(accs):\n    'doc'\n    return 0\n\ndef _private(): pass",
             "#| export\n_helper = 2",
             "#| export\n@patch\ndef shown(self: EvalResult, k: int = 1,  # how many\n          ) -> int:\n    'A patched method.'",
             "#| eval: false\nprint('kept')")
    entries = build_docs.stage_notebook(nb, "nbs/06_adapt.ipynb", set())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert not any("#|" in s for s in sources) and not any("secret" in s for s in sources)
    assert sources[-1] == "print('kept')"
    docs = [s for c, s in zip(nb["cells"], sources) if c["cell_type"] == "markdown"]
    assert docs[0].startswith("```{py:function} mean_ci95(accs) -> tuple[float, float]\n:module: mtl_meta.adapt")
    assert _first_words(importlib.import_module("mtl_meta.adapt").mean_ci95) in docs[0]   # the installed docstring
    assert "{py:method} EvalResult.shown(k: int = 1) -> int" in docs[1] and "| `k` | int | 1 | how many |" in docs[1]
    folded = [c for c in nb["cells"] if "hide-input" in c["metadata"].get("tags", [])]
    assert len(folded) == 2 and "_helper = 2" in "".join(folded[0]["source"])   # a private cell joins the fold
    assert [(e["name"], e["kind"]) for e in entries] == [("mean_ci95", "function"), ("EvalResult.shown", "method")]


def test_stored_outputs_are_staged_without_machine_paths_or_environment_warnings():
    nb = _nb("x")
    nb["cells"][0]["source"] = 'out_dir = "/work/wt3/figures/runs/theory"\ndata_root = "/work/shared/data"'
    nb["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stderr", "text":
         "/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please\n"
         "  from .autonotebook import tqdm as notebook_tqdm\n[IPKernelApp] WARNING | Unknown error\nkept line\n"},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": "PosixPath('/work/wt3/figures/runs/theory/x.png') /tmp/tmpab12cd/imgs /root/data"}}]
    build_docs.clean_outputs(nb, {"/work/shared/data": "<data>"}, sources=True)
    cell = nb["cells"][0]
    assert cell["source"] == 'out_dir = "figures/runs/theory"\ndata_root = "<data>"'
    assert cell["outputs"][0]["text"] == "kept line\n"
    assert cell["outputs"][1]["data"]["text/plain"] == "PosixPath('figures/runs/theory/x.png') <tmp>/imgs ~/data"
    assert build_docs.leaks("see /work/x/y and /usr/lib/z") == ["machine path '/work/x/y'", "machine path '/usr/lib/z'"]
    assert build_docs.leaks("x.py:3: UserWarning: careful") == ["environment warning 'x.py:3: UserWarning: careful'"]
    assert build_docs.leaks("mtl-meta reproduce --out /tmp/gpu-dry  # an example to type") == []


def test_stored_outputs_of_the_notebooks_show_no_machine_paths_or_environment_warnings():
    assert build_docs.notebook_output_leaks(REPO) == []


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


def test_results_of_each_figures_folder_get_their_own_caption_in_the_navigation():
    # figures/cost.md and figures/cpu-2026-11/cost.md share a title: in one list a reader could not tell them apart
    pages = ["benchmarks/README", "figures/cost", "figures/cpu-2026-11/cost", "figures/regimes/regimes", "figures/zz/x"]
    trees = build_docs._results_toctrees(pages)
    captions = [re.search(r":caption: (.*)", t).group(1) for t in trees]
    assert captions[0] == "Results" and "figures/regimes" in captions[1]
    assert captions[2:] == ["Results kept in figures/cpu-2026-11", "Results kept in figures/zz"]
    listed = [t.split("\n\n", 1)[1].split("\n```")[0].split("\n") for t in trees]
    assert listed[0] == ["benchmarks/README", "figures/cost"] and listed[2] == ["figures/cpu-2026-11/cost"]
    assert sorted(sum(listed, [])) == sorted(pages)
