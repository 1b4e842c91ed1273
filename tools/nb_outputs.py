"""Library notebooks keep their outputs, and the outputs are provably current.

    python tools/nb_outputs.py run [NB ...]   execute library notebooks headless, store their outputs
    python tools/nb_outputs.py check          fail when a notebook's code changed after its outputs

`run` executes each library notebook (nbs/*.ipynb, not the experiment notebooks, whose executed
copies are run artefacts) in a fresh Jupyter kernel from the nbs/ folder, as `nbdev_test` does,
and writes the outputs back into the notebook with the SHA-256 of its code cells in the
notebook's metadata (`mtl_meta.code_sha256`), and a hash of each module of the package that its
code imports, directly or through other modules (`mtl_meta.modules`). `check` recomputes both: a
notebook whose code, or any module it runs, changed after its outputs were made is stale, and
`make test` fails with one line naming what changed and the command that refreshes it
(`make outputs`). Figures are stored as PNG at 72 dpi so notebooks stay
small; cells flagged `#| slow` or `#| eval: false` are not executed (nbdev_test skips them too).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

KEY = "mtl_meta"
REFRESH = "make outputs"
SKIP = re.compile(r"^\s*#\|\s*(slow|eval:\s*false)\b", re.M)
# Run first in the kernel, never stored: small PNG figures, no widgets needed for progress bars.
SETUP = """\
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
import matplotlib
matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 72})
from matplotlib_inline.backend_inline import set_matplotlib_formats
set_matplotlib_formats("png")
"""
# Start-up chatter of TensorFlow/XLA (imported by neural-tangents) on a machine without a GPU: not a result.
NOISE = re.compile(r"cuda_(fft|dnn|blas)\.cc|Unable to register cu|absl::InitializeLog|TF-TRT Warning"
                   r"|computation placer already registered|oneDNN custom operations|rebuild TensorFlow")
# Budget for one notebook, in seconds: a library notebook runs at laptop size in minutes.
TIMEOUT = 900


def library_notebooks(root: Path = Path(".")) -> list[Path]:
    "The notebooks whose outputs are stored: every notebook directly in nbs/."
    return sorted(p for p in (root / "nbs").glob("*.ipynb"))


def code_sha256(nb: dict) -> str:
    "Hash of a notebook's code, in order: what its outputs were made from."
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            h.update(("".join(src) if isinstance(src, list) else src).encode("utf-8"))
            h.update(b"\0")
    return h.hexdigest()


PACKAGE = Path(__file__).resolve().parent.parent / "mtl_meta"
_NB_IMPORT = re.compile(r"^\s*(?:from\s+mtl_meta\.(\w+)\s+import|import\s+mtl_meta\.(\w+)|from\s+mtl_meta\s+import\s+\(?([\w ,]+))",
                        re.M)


def _module_imports(path: Path) -> set[str]:
    "The package's modules that module file `path` imports, at module level or inside a function."
    import ast
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("mtl_meta."):
                found.add(node.module.split(".")[1])
            elif node.module == "mtl_meta":
                found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mtl_meta.")}
    return {m for m in found if (PACKAGE / f"{m}.py").is_file()}


def imported_modules(nb: dict, package: Path = PACKAGE) -> list[str]:
    """The package's modules a notebook's code runs: those its code cells import, and everything they import in
    turn, as file stems (`core`, `data`, ...), sorted."""
    todo = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            for m in _NB_IMPORT.finditer("".join(src) if isinstance(src, list) else src):
                names = [m.group(1) or m.group(2)] if (m.group(1) or m.group(2)) else m.group(3).split(",")
                todo |= {n.strip() for n in names if (package / f"{n.strip()}.py").is_file()}
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo |= _module_imports(package / f"{m}.py") - seen
    return sorted(seen)


def module_hashes(nb: dict, package: Path = PACKAGE) -> dict[str, str]:
    "The first 16 hex digits of the SHA-256 of each module a notebook's code runs, by module."
    return {m: hashlib.sha256((package / f"{m}.py").read_bytes()).hexdigest()[:16]
            for m in imported_modules(nb, package)}


def stale_reason(nb: dict, package: Path = PACKAGE) -> str | None:
    "Why a notebook's stored outputs cannot be trusted, or None when they are current."
    meta = nb.get("metadata", {}).get(KEY, {})
    stored = meta.get("code_sha256")
    if stored is None:
        return "has no record of executing its code (outputs never made)"
    if stored != code_sha256(nb):
        return "code changed after its outputs were made"
    if "modules" not in meta:
        return "has no record of the modules its code ran"
    now, then = module_hashes(nb, package), meta["modules"]
    changed = sorted(m for m in set(now) | set(then) if now.get(m) != then.get(m))
    if changed:
        return (f"mtl_meta/{changed[0]}.py" + (f" and {len(changed) - 1} more modules" if len(changed) > 1 else "")
                + " changed after its outputs were made")
    return None


def _runnable_copy(nb):
    "The notebook as the kernel runs it: skipped cells emptied, the setup cell first."
    import nbformat

    run = copy.deepcopy(nb)
    for cell in run.cells:
        if cell.cell_type == "code" and SKIP.search(cell.source):
            cell.source = ""
    setup = nbformat.v4.new_code_cell(SETUP)
    setup.id = "mtlmetasetup"
    run.cells.insert(0, setup)
    return run


def execute(path: Path, timeout: int = TIMEOUT) -> float:
    "Execute `path` headless and store its outputs and code hash in it; returns seconds."
    import nbformat
    from nbclient import NotebookClient
    from nbdev.clean import clean_nb

    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    run = _runnable_copy(nb)
    env_before = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "TF_CPP_MIN_LOG_LEVEL")}
    os.environ.update(TQDM_DISABLE="1", TF_CPP_MIN_LOG_LEVEL="3")  # progress bars and TF logs are noise here
    t0 = time.perf_counter()
    try:
        NotebookClient(run, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    done = {c.id: c for c in run.cells if c.cell_type == "code"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = done[cell.id].outputs
            kept = []
            for o in cell.outputs:
                o.pop("transient", None)
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    o["text"] = "".join(l for l in o["text"].splitlines(keepends=True) if not NOISE.search(l))
                    if not o["text"].strip():
                        continue
                kept.append(o)
            cell.outputs = kept
    stored = json.loads(nbformat.writes(nb))  # multi-line strings as lists of lines, as on disk
    stored.setdefault("metadata", {})[KEY] = {"code_sha256": code_sha256(stored), "modules": module_hashes(stored)}
    clean_nb(stored, clear_all=False, allowed_metadata_keys=[KEY], allowed_cell_metadata_keys=["tags"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(stored, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return seconds


def check(paths: list[Path]) -> int:
    "One line per stale notebook; the number of stale notebooks."
    bad = 0
    for p in paths:
        why = stale_reason(json.loads(p.read_text(encoding="utf-8")))
        if why:
            print(f"{p}: stored outputs are stale ({why}); run `{REFRESH}`", file=sys.stderr)
            bad += 1
    return bad


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "check"):
        print("usage: nb_outputs.py run [NB ...] | check", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv[1:]] or library_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"nb_outputs.py: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    if argv[0] == "check":
        bad = check(paths)
        print(f"notebook outputs: {len(paths)} checked, {bad} stale")
        return 1 if bad else 0
    for p in paths:
        print(f"{p}: executed in {execute(p):.0f} s, {p.stat().st_size / 1024:.0f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
