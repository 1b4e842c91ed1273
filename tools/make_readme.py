"""Generate README.md from nbs/index.ipynb (markdown cells verbatim, visible code cells as
Python blocks, nbdev `#|` directives removed). `--check` fails when README.md is stale."""
import json
import sys
from pathlib import Path

HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, then `make readme`. -->\n\n"


def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]).strip("\n")
        if cell["cell_type"] == "markdown":
            parts.append(src)
            continue
        lines = src.splitlines()
        directives = {l[3:].strip().split()[0] for l in lines if l.startswith("#|") and l[3:].strip()}
        if "hide" in directives:
            continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
        if code:
            parts.append(f"```python\n{code}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


def main(argv):
    text = render(Path("nbs/index.ipynb"))
    readme = Path("README.md")
    if "--check" in argv:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            print("README.md is out of date with nbs/index.ipynb; run `make readme`", file=sys.stderr)
            return 1
        print("README.md matches nbs/index.ipynb")
        return 0
    readme.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
