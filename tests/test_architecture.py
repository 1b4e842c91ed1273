"""The package's shape: imports flow one way (no cycle among mtl_meta's modules), nothing is star-imported,
and the table writer loads without torch."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mtl_meta"


def _module_imports(path: Path) -> set[str]:
    """The mtl_meta modules `path` imports, at module level or inside any function (a lazy import still ties the
    modules together: a circle through one is a circle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:   # from .x import y / from . import x
                found |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("mtl_meta."):
                found.add(node.module.split(".")[1])
            elif node.module == "mtl_meta":   # from mtl_meta import gbml
                found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mtl_meta.")}
    return found - {"_modidx"}


def _graph() -> dict[str, set[str]]:
    return {p.stem: _module_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "_modidx"}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    "One import cycle of `graph` as a list of modules, or [] when there is none."
    state, stack = {}, []
    def visit(m):
        state[m] = "open"; stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = "done"; stack.pop()
        return []
    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle():   # the check below could fail
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycle_among_the_modules():
    graph = _graph()
    assert {"runs", "profiles", "sweep", "reproduce", "report"} <= set(graph)
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def test_the_run_pipeline_flows_one_way():
    "report <- runs <- profiles <- sweep <- reproduce: each imports only modules before it."
    g = _graph()
    order = ["report", "runs", "profiles", "sweep", "reproduce"]
    for i, m in enumerate(order):
        later = set(order[i + 1:])
        assert not g[m] & later, f"{m} imports {sorted(g[m] & later)}, which come after it in the pipeline"


def test_the_data_parts_flow_one_way():
    "datasets <- benchmark_data, folders <- data: the registry knows no loader, the loaders no name look-up."
    g = _graph()
    assert not g["datasets"] & {"benchmark_data", "folders", "data"}
    assert "datasets" in g["benchmark_data"] and "datasets" in g["folders"]
    assert not (g["benchmark_data"] | g["folders"]) & {"data", "benchmark_data", "folders"}
    assert {"datasets", "benchmark_data", "folders"} <= g["data"]


def test_no_star_imports():
    for p in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert all(a.name != "*" for a in node.names), f"{p.name} star-imports from {node.module}"


def test_report_loads_without_torch_or_the_algorithms():
    code = "import sys, mtl_meta.report; print(sorted(m for m in ('torch', 'jax', 'mtl_meta.gbml') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# Signatures that keep more than 8 parameters, and why (a record would hide what the registry reads).
LONG_SIGNATURES = {
    "folders.load_image_folder": "a data set's loader: its keyword options are the data set's options, which the "
                              "registry reads from this signature to offer them as --dataset-option on the command line",
    "gbml.R2D2.__init__": "a method's constructor: its keyword options are the method's options, which "
                          "`option_defaults` reads from the signature to offer and check them as --option KEY=VALUE",
    "gbml.GradientStepLearner.__init__": "the inner-loop settings MAML, first-order MAML and ANIL share, written once "
                                         "(their options, read from this signature like every method's)",
}


def _parameter_counts():
    "Public functions and constructors of mtl_meta with their number of parameters (self and **kwargs count as 0 and 1)."
    for p in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(p.read_text())
        for cls in [None, *[n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]]:
            body = tree.body if cls is None else cls.body
            for node in body:
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                if node.name.startswith("_") and node.name != "__init__":
                    continue
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                n -= cls is not None and bool(a.args) and a.args[0].arg in ("self", "cls")
                name = f"{p.stem}.{node.name}" if cls is None else f"{p.stem}.{cls.name}.{node.name}"
                yield name, n


def test_no_public_function_takes_more_than_eight_parameters():
    counts = dict(_parameter_counts())
    assert "api.train" in counts and "reproduce.reproduce" in counts   # the walk sees the package's entry points
    long = {name: n for name, n in counts.items() if n > 8 and name not in LONG_SIGNATURES}
    assert long == {}, f"more than 8 parameters (group them in a record, or name the exception): {long}"
    assert all(counts.get(name, 0) > 8 for name in LONG_SIGNATURES), "an exception no longer needed: remove it"


LONG_CELLS_ALLOWED = {   # notebook cell id: why it reads better whole
    "06_adapt.ipynb#cccc0008-3": "logreg_torch: one batched L-BFGS solve, read top to bottom beside its maths",
}


def test_no_exported_cell_is_over_sixty_lines_apart_from_named_exceptions():
    import json
    long = {}
    for nb in sorted((PACKAGE.parent / "nbs").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and source.startswith("#| export") and len(source.splitlines()) > 60:
                long[f"{nb.name}#{cell.get('id')}"] = len(source.splitlines())
    assert set(long) <= set(LONG_CELLS_ALLOWED), {k: v for k, v in long.items() if k not in LONG_CELLS_ALLOWED}
    assert long.keys() == LONG_CELLS_ALLOWED.keys(), "a named exception is no longer long: remove it from the list"


def test_every_fixture_built_once_for_all_workers_is_grouped_for_loadgroup():
    """A fixture that builds through `built_once` / `cli_once` must be in conftest's SHARED_FIXTURES, else under
    `--dist loadgroup` its tests spread over both workers and one waits idle on the other's lock."""
    from conftest import SHARED_FIXTURES
    builders = set()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
                calls = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
                if calls & {"built_once", "cli_once"}:
                    builders.add(node.name)
    assert builders and builders == set(SHARED_FIXTURES), builders ^ set(SHARED_FIXTURES)
