"""Each definition shown working (issue 41, STYLE.md): in the library notebooks, a public function or class defined in
an exported cell is used by a later cell that is neither exported nor hidden, and every library notebook stores
outputs, so its page shows results, not only code."""
import ast
import json
import re
from pathlib import Path

NBS = Path(__file__).resolve().parents[1] / "nbs"
SHOWN_AT_LEAST = 0.90   # the share of public definitions that a later cell uses
DIRECTIVE = re.compile(r"^#\|\s*(\w+)", re.M)


def library_notebooks() -> list[Path]:
    "The notebooks that export a module (nbs/NN_*.ipynb), in order."
    return sorted(p for p in NBS.glob("[0-9]*.ipynb"))


def _code_cells(nb_path: Path) -> list[tuple[set, str, dict]]:
    "Each code cell of a notebook as (its directives, its source without them, the cell)."
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    out = []
    for c in cells:
        if c["cell_type"] == "code":
            src = "".join(c["source"])
            out.append((set(DIRECTIVE.findall(src)), "\n".join(l for l in src.splitlines() if not l.startswith("#|")), c))
    return out


def definitions_and_use(nb_path: Path) -> list[tuple[str, bool]]:
    "(name, whether a later shown cell uses it) for each public top-level def or class of the exported cells."
    cells = _code_cells(nb_path)
    found = []
    for i, (directives, src, _) in enumerate(cells):
        if "export" not in directives:
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                used = re.compile(rf"\b{re.escape(node.name)}\b")
                shown = any(used.search(s) for d, s, _ in cells[i + 1:] if not d & {"export", "exports", "hide"})
                found.append((node.name, shown))
    return found


def test_the_measure_sees_a_use_and_a_missing_one(tmp_path):
    cell = lambda src: {"cell_type": "code", "metadata": {}, "outputs": [], "source": src}
    nb = {"cells": [cell("#| export\ndef shown(x):\n    return x\n\ndef unshown():\n    pass"),
                    cell("#| hide\nunshown()"), cell("shown(1)")]}
    (tmp_path / "00_x.ipynb").write_text(json.dumps(nb))
    assert definitions_and_use(tmp_path / "00_x.ipynb") == [("shown", True), ("unshown", False)]


def test_most_public_definitions_are_shown_working():
    per_notebook = {p.name: definitions_and_use(p) for p in library_notebooks()}
    every = [(nb, name) for nb, found in per_notebook.items() for name, shown in found]
    unshown = [f"{nb}:{name}" for nb, found in per_notebook.items() for name, shown in found if not shown]
    assert len(every) > 200   # the walk finds the package's definitions
    share = 1 - len(unshown) / len(every)
    assert share >= SHOWN_AT_LEAST, (f"{share:.0%} of {len(every)} public definitions are used by a later cell; "
                                     f"not yet: {', '.join(unshown)}")


def test_every_library_notebook_stores_outputs():
    empty = [p.name for p in library_notebooks()
             if any("export" in d for d, _, _ in _code_cells(p))
             and not any(c.get("outputs") for _, _, c in _code_cells(p))]
    assert not empty, f"library notebooks without any stored output: {', '.join(empty)}"
