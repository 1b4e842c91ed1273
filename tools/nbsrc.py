"""Convert between a notebook and a plain "percent" script, so notebooks can be written and
reviewed as text.

    python tools/nbsrc.py to-py nbs/08_mtl.ipynb > /tmp/08_mtl.py     # notebook -> script
    python tools/nbsrc.py to-nb /tmp/08_mtl.py nbs/08_mtl.ipynb        # script -> notebook

Script format: a line `# %%` opens a code cell, `# %% [markdown]` a markdown cell whose lines
are written as `# text`; `# %% tags=["parameters"]` opens a code cell with those cell tags (the
papermill parameters cell). Cell ids are numbered (`cccc0000`, `cccc0001`, ...) so that exports
stay stable. The notebook written is clean (no outputs, no execution counts).
"""
import json
import re
import sys
from pathlib import Path

HEADER = re.compile(r"^# %%(?: \[(markdown)\])?(?: tags=(\[.*\]))?\s*$")


def to_py(nb_path: str) -> str:
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags")
        head = "# %%" + (" [markdown]" if cell["cell_type"] == "markdown" else "")
        if tags:
            head += " tags=" + json.dumps(tags)
        out.append(head)
        if cell["cell_type"] == "markdown":
            out.extend(("# " + line) if line else "#" for line in src.split("\n"))
        else:
            out.append(src)
        out.append("")
    return "\n".join(out)


def to_nb(py_text: str) -> dict:
    cells, cur = [], None
    for line in py_text.split("\n"):
        m = HEADER.match(line)
        if m:
            cur = {"kind": "markdown" if m.group(1) else "code", "tags": json.loads(m.group(2)) if m.group(2) else None,
                   "lines": []}
            cells.append(cur)
        elif cur is not None:
            cur["lines"].append(line)
    nb_cells = []
    for i, c in enumerate(cells):
        lines = c["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        if c["kind"] == "markdown":
            lines = [l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l for l in lines]
        src = "\n".join(lines)
        source = [l + "\n" for l in src.split("\n")]
        source[-1] = source[-1][:-1]
        if source == [""]:
            source = []
        cell = {"cell_type": c["kind"], "metadata": {"tags": c["tags"]} if c["tags"] else {}, "source": source}
        if c["kind"] == "code":
            cell.update(execution_count=None, outputs=[])
        cell["id"] = f"cccc{i:04x}"
        nb_cells.append(cell)
    return {"cells": nb_cells,
            "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def main(argv):
    if len(argv) == 2 and argv[0] == "to-py":
        sys.stdout.write(to_py(argv[1]))
    elif len(argv) == 3 and argv[0] == "to-nb":
        nb = to_nb(Path(argv[1]).read_text(encoding="utf-8"))
        Path(argv[2]).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
