"""Build the mtl-meta site offline from the notebooks, with their stored outputs, and check it.

    python tools/build_docs.py [--out _build/site]      build (what `make docs` runs)
    python tools/build_docs.py --check-only DIR         check a built site

The site mirrors the repository, so every link written for the README and for a Git host also
resolves on the site: `index.html` is nbs/index.ipynb (the README's source), the notebooks are
under `nbs/`, and `figures/` holds the tables, figures and executed experiment notebooks that
`make reproduce` wrote (and `benchmarks/` its measured results). The reading order is read from the "Reading order" section of
nbs/index.ipynb, the one place it is written: the site's navigation follows it, and a notebook
missing from it stops the build.

Checks after building: every notebook has a page, every internal link and image of every page
resolves to a file of the site, and the maths is rendered by a MathJax the site serves itself
(no CDN).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
READING_HEADING = "## Reading order"
LINK = re.compile(r"\]\(((?:nbs/)[^)#\s]+\.ipynb)\)")


def reading_order(root: Path = ROOT) -> list[str]:
    "Notebook paths (from the repository root) in the order nbs/index.ipynb's reading order lists them."
    nb = json.loads((root / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    if READING_HEADING not in text:
        raise SystemExit(f"build_docs: nbs/index.ipynb has no '{READING_HEADING}' section")
    section = text.split(READING_HEADING, 1)[1].split("\n## ", 1)[0]
    seen: list[str] = []
    for path in LINK.findall(section):
        if path not in seen:
            seen.append(path)
    return seen


def site_notebooks(root: Path = ROOT) -> list[str]:
    "Every source notebook that gets a page, as a path from the repository root."
    nbs = [p for p in (root / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(str(p.relative_to(root)) for p in nbs if p.name != "index.ipynb")


def _toctree(caption: str, entries: list[str], glob: bool = False) -> str:
    opts = f":caption: {caption}\n:maxdepth: 1\n" + (":glob:\n" if glob else "")
    return "```{toctree}\n" + opts + "\n" + "\n".join(entries) + "\n```\n"


def _title_run(path: Path, src: Path) -> str:
    "Title an executed run's staged notebook by its run folder (all runs of one experiment share a heading)."
    nb = json.loads(path.read_text(encoding="utf-8"))
    # the notebook was written in nbs/experiments/: its relative links point from there, the page sits in
    # figures/runs/NAME/ (as deep below the site's root), so they are pointed back at nbs/experiments/
    home = "../" * (len(path.relative_to(src).parts) - 1) + "nbs/experiments/"
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            cell["source"] = re.sub(r"\]\((?![a-z]+:|#|/)([^)]+\.ipynb)\)", lambda m: f"]({home}{m.group(1)})", text)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            cell["source"] = ("#" + text) if text.startswith("# ") else text
            break
    nb["cells"].insert(0, {"cell_type": "markdown", "id": "runtitle", "metadata": {},
                           "source": f"# Run `{path.parent.name}`"})
    path.write_text(json.dumps(nb), encoding="utf-8")
    return str(path.relative_to(src).with_suffix(""))


def stage(src: Path, root: Path = ROOT) -> None:
    "Lay out the site's sources in `src`: the index, the notebooks and figures/, as in the repository."
    order = reading_order(root)
    missing = sorted(set(site_notebooks(root)) - set(order))
    if missing:
        raise SystemExit("build_docs: not in the reading order of nbs/index.ipynb: "
                         + ", ".join(missing) + f"; add them under '{READING_HEADING}'")
    if src.exists():
        shutil.rmtree(src)
    (src / "nbs").mkdir(parents=True)
    for rel in site_notebooks(root):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        text = (root / rel).read_text(encoding="utf-8")
        # nbs/index.ipynb is the site's root page, one folder up from where it sits in the repository
        up = "../" * (len(Path(rel).parts) - 1)
        (src / rel).write_text(text.replace("](index.ipynb)", f"]({up}index.ipynb)"), encoding="utf-8")
    shutil.copytree(root / "figures", src / "figures",
                    ignore=shutil.ignore_patterns("*.pt", "*.tmp", ".*"))
    for md in sorted((root / "benchmarks").rglob("*.md")):   # measured results and the GPU checklist
        (src / md.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(md, src / md.relative_to(root))
    figure_pages = sorted(str(p.relative_to(src).with_suffix(""))
                          for folder in ("figures", "benchmarks") for p in (src / folder).rglob("*.md"))
    run_pages = [_title_run(p, src) for p in sorted((src / "figures" / "runs").rglob("*.ipynb"))]
    runs_index = src / "figures" / "runs" / "index.md"
    runs_index.parent.mkdir(parents=True, exist_ok=True)
    runs_index.write_text("# Executed runs\n\nEvery run of the committed reproduction, as executed by `make reproduce`"
                          " (parameters injected by papermill, outputs as they ran).\n\n"
                          + _toctree("Executed runs", [str(Path(p).relative_to("figures/runs")) for p in run_pages]),
                          encoding="utf-8")
    index = json.loads((root / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    nav = ("```{toctree}\n:hidden:\n:caption: Reading order\n:maxdepth: 1\n\n"
           + "\n".join(p.removesuffix(".ipynb") for p in order) + "\n```\n\n"
           + "```{toctree}\n:hidden:\n:caption: Results\n:maxdepth: 1\n\n"
           + "\n".join(figure_pages) + "\n```\n\n"
           + "```{toctree}\n:hidden:\n:caption: Executed runs\n:maxdepth: 1\n\nfigures/runs/index\n```\n")
    index["cells"].append({"cell_type": "markdown", "id": "sitenav", "metadata": {},
                           "source": nav.splitlines(keepends=True)})
    (src / "index.ipynb").write_text(json.dumps(index, indent=1), encoding="utf-8")


def build(out: Path, root: Path = ROOT) -> list[str]:
    "Stage the sources beside `out`, run Sphinx into `out`; the links Sphinx could not resolve."
    src = out.with_name(out.name + "-src")
    stage(src, root)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q",
           "-c", str(root / "docs"), str(src), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    warnings = [l for l in done.stderr.splitlines() if "WARNING" in l or "ERROR" in l]
    for line in warnings[:40]:
        print(line, file=sys.stderr)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"build_docs: sphinx failed (exit {done.returncode})")
    print(f"site built: {out} ({len(list(out.rglob('*.html')))} pages, {len(warnings)} warnings)")
    return [w.split("WARNING: ", 1)[-1] for w in warnings if "xref_missing" in w]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if v and ((tag == "a" and k == "href") or (tag in ("img", "script", "source") and k == "src")
                      or (tag == "link" and k == "href")):
                self.refs.append((tag, v))


def check_site(out: Path, root: Path = ROOT) -> list[str]:
    "Problems of a built site: missing pages, links or images that resolve to nothing, maths from a CDN."
    problems = []
    for rel in site_notebooks(root) + ["index.ipynb"]:
        page = out / Path(rel).with_suffix(".html")
        if not page.is_file():
            problems.append(f"{rel}: no page ({page.relative_to(out)})")
    mathjax_local = False
    for page in sorted(out.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        prose = re.sub(r"<(pre|code|script|style)\b.*?</\1>", " ", html, flags=re.S)
        prose = re.sub(r'<(span|div) class="math[^"]*">.*?</\1>', " ", prose, flags=re.S)
        for m in re.finditer(r"\$", re.sub(r"<[^>]+>", "", prose)):
            text = re.sub(r"<[^>]+>", "", prose)
            snippet = " ".join(text[max(0, m.start() - 40):m.end() + 40].split())
            problems.append(f"{page.relative_to(out)}: maths left unrendered near '{snippet}'")
            break
        parser = _Refs()
        parser.feed(html)
        for tag, ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("//", "#", "mailto:")):
                if tag == "script" and "mathjax" in ref.lower():
                    problems.append(f"{page.relative_to(out)}: maths from a CDN ({ref})")
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{page.relative_to(out)}: {tag} -> {ref} resolves to nothing")
            elif tag == "script" and "mathjax" in ref.lower():
                mathjax_local = True
    if not mathjax_local:
        problems.append("no page loads MathJax from the site itself")
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "site", help="output folder")
    ap.add_argument("--check-only", action="store_true", help="check an already built --out")
    args = ap.parse_args(argv)
    problems = [] if args.check_only else build(args.out)
    problems += check_site(args.out)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"site check: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
