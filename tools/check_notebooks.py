"""Fail unless every notebook under nbs/ is clean: what `nbdev_clean` would write and no execution
counts. Library notebooks (directly in nbs/) keep their outputs, as fastcore's do (made by
`make outputs`, checked current by tools/nb_outputs.py); experiment notebooks (nbs/experiments/)
store none, since their executed copies are run artefacts. Run from the repository root; `--fix`
cleans in place."""
import copy
import json
import sys
from pathlib import Path

from nbdev.clean import _nbdev_clean, nbdev_clean


def keeps_outputs(path: Path) -> bool:
    "Library notebooks keep their outputs; experiment notebooks do not."
    return path.parent == Path("nbs")


def problems(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count")
        if cell.get("outputs") and not keeps_outputs(path):
            found.append(f"cell {i} has stored outputs (experiment notebooks store none)")
    cleaned = copy.deepcopy(nb)
    _nbdev_clean(cleaned, clear_all=False)
    if cleaned != nb:
        found.append("metadata differs from what nbdev_clean writes")
    return found


def main(argv):
    fix = "--fix" in argv
    paths = sorted(p for p in Path("nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    bad = 0
    for p in paths:
        if fix:
            nb = json.loads(p.read_text(encoding="utf-8"))
            for c in nb["cells"]:
                if c.get("cell_type") == "code":
                    c["execution_count"] = None
                    if not keeps_outputs(p):
                        c["outputs"] = []
            p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            nbdev_clean(fname=str(p))
            continue
        for msg in problems(p):
            print(f"{p}: {msg}; run `make clean-nbs`", file=sys.stderr)
            bad += 1
    if not fix:
        print(f"notebooks clean: {len(paths)} checked, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
