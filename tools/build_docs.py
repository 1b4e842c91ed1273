"""Build the mtl-meta site offline from the notebooks, with their stored outputs, and check it.

    python tools/build_docs.py [--out _build/site]      build (what `make docs` runs)
    python tools/build_docs.py --check-only DIR         check a built site

The site mirrors the repository, so every link written for the README and for a Git host also
resolves on the site: `index.html` is nbs/index.ipynb (the README's source), the notebooks are
under `nbs/`, and `figures/` holds the tables, figures and executed experiment notebooks that
`make reproduce` wrote (and `benchmarks/` its measured results). The reading order is read from the "Reading order" section of
nbs/index.ipynb, the one place it is written: the site's navigation follows it, and a notebook
missing from it stops the build.

Pages read like nbdev's, and only the staged copies are changed for it (the repository's notebooks stay as
they are): `#|` directives are removed and `#| hide` and `#| default_exp` cells left out; above each
`#| export` cell of a library notebook (nbs/NN_*.ipynb) every public function, class (with its public
methods) and `@patch`ed method (`Cls.f`) it defines is documented, its signature and docstring from the
installed `mtl_meta.<module>` and a parameter table from its per-parameter comments, with the cell's source
folded beneath; `api.md` lists every name of every module's `__all__` with a link to its documentation.
Stored outputs lose machine paths (put in a neutral form: `<data>`, `<out>`, a path from the repository
root) and environment warnings; an executed run's page also says which command ran it, at which commit and
when, and links the current notebook.

Checks after building: every notebook has a page, every internal link and image of every page
resolves to a file of the site, the maths is rendered by a MathJax the site serves itself
(no CDN), and no page shows a machine path or an environment warning.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import io
import json
import re
import shutil
import subprocess
import sys
import tokenize
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


# ---------------------------------------------------------------------------------------------------------------------
# Pages rendered like nbdev's: directives and hidden cells gone, every exported public name documented above its
# folded source, stored outputs free of machine paths and environment warnings. Only the staged copies change.

DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)(.*)$")
REPO_DIRS = ("nbs", "figures", "benchmarks", "mtl_meta", "tests", "tools", "experiments")
# a machine path: this machine's layout (checkout, home, system, virtual environment) or a generated temporary name;
# a short path written for a reader to type (`--out /tmp/gpu-dry`) is an example, not a machine path
MACHINE_PATH = re.compile(r"(?<![\w.<>~-])(?:/(?:work|root|home|usr|opt|scratch|mnt)/[^\s'\"`<>)\],;]*"
                          r"|/tmp/(?:ipykernel_|tmp|pytest-of-)[^\s'\"`<>)\],;]*"
                          r"|[^\s'\"`<>]*(?:/\.venv/|/site-packages/)[^\s'\"`<>)\],;]*)")
# environment warnings: a `warnings` record (`file.py:12: SomeWarning: ...`), tqdm's IProgress notice, the kernel's
# own warnings, TensorFlow/XLA start-up chatter
ENV_WARNING = re.compile(r"^(?:\S*:\d+: )?[A-Z]\w*Warning: .*$|IProgress not found|^\[IPKernelApp\] WARNING.*$"
                         r"|^(?:[EWI]\d{4} [\d:.]+\s+\d+ |[\d-]+ [\d:.]+: [EWI] )\S+\.cc:\d+\].*$"
                         r"|^WARNING: All log messages before absl::InitializeLog.*$|^WARNING:(?:absl|jax|tensorflow):.*$", re.M)


def cell_directives(cell: dict) -> dict[str, str]:
    "The `#| name value` directives at the top of a code cell, as {name: value}."
    found = {}
    if cell.get("cell_type") == "code":
        for line in "".join(cell["source"]).splitlines():
            m = DIRECTIVE.match(line)
            if not m:
                if line.strip():
                    break
                continue
            found[m.group(1)] = m.group(2).strip(" :")
    return found


def strip_directives(nb: dict) -> str | None:
    """Drop `#| hide` cells and the `#| default_exp` cell, and every `#|` line of the other code cells, in place.
    Returns the module name of `#| default_exp`, if any."""
    module, cells = None, []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            found = cell_directives(cell)
            if "default_exp" in found:
                module = found["default_exp"].split()[0]
            if "hide" in found or "default_exp" in found:
                continue
            src = "".join(cell["source"])
            kept = "\n".join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip("\n")
            if src and not kept and not cell.get("outputs"):
                continue
            cell["source"] = kept
            if "export" in found or "exports" in found:
                cell.setdefault("metadata", {})["mtl_meta_export"] = True
        cells.append(cell)
    nb["cells"] = cells
    return module


def neutral_paths(text: str, known: dict[str, str] | None = None) -> str:
    """`text` with machine paths put in a neutral form: `known` paths (a run's data root) by their name (`<data>`),
    a checkout's files from the repository root (`figures/runs/x`), installed packages from `<site-packages>`, a
    notebook cell's file as `<cell>`, temporary folders as `<tmp>`, home folders as `~`, anything else by its name."""
    for path, name in sorted((known or {}).items(), key=lambda kv: -len(kv[0])):
        if path and path.startswith("/"):
            text = text.replace(path.rstrip("/"), name)
    text = re.sub(r"[^\s'\"`<>]*/site-packages/", "<site-packages>/", text)
    text = re.sub(r"/usr/(?:local/)?lib/python3[\d.]*/", "<python>/", text)
    text = re.sub(r"/tmp/ipykernel_\d+/\d+\.py", "<cell>", text)
    text = re.sub(r"/tmp/pytest-of-[\w-]+/pytest-\d+", "<tmp>", text)
    text = re.sub(r"/tmp/tmp[\w-]+", "<tmp>", text)
    text = re.sub(r"(?<![\w.<>~-])/(?:[\w.+-]+/)+?((?:" + "|".join(REPO_DIRS) + r")(?=[/'\"\s`)\],;]|$))", r"\1", text)
    text = re.sub(r"(?<![\w.<>~-])/(?:root|home/[\w.-]+)(?=/)", "~", text)
    return MACHINE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "<path>", text)


def drop_env_warnings(text: str) -> str:
    "`text` without environment warnings: each warning's line and the indented source line printed under it."
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if ENV_WARNING.search(line):
            skipping = True
            continue
        if skipping and line.startswith((" ", "\t")):
            continue
        skipping = False
        kept.append(line)
    return "".join(kept)


def clean_outputs(nb: dict, known: dict[str, str] | None = None, sources: bool = False) -> None:
    "Neutral paths in every stored output (and in every cell's source, when `sources`), environment warnings dropped."
    for cell in nb["cells"]:
        if sources:
            cell["source"] = neutral_paths("".join(cell["source"]), known)
        if "outputs" not in cell:
            continue
        outs = []
        for out in cell["outputs"]:
            if out.get("output_type") == "stream":
                text = "".join(out.get("text", ""))
                out["text"] = neutral_paths(drop_env_warnings(text) if out.get("name") == "stderr" else text, known)
                if not out["text"].strip():
                    continue
            elif out.get("output_type") == "error":
                out["traceback"] = [neutral_paths(t, known) for t in out.get("traceback", [])]
                out["evalue"] = neutral_paths(out.get("evalue", ""), known)
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, (str, list)):
                    out["data"][mime] = neutral_paths("".join(value), known)
            outs.append(out)
        cell["outputs"] = outs
    nb.get("metadata", {}).pop("papermill", None)


def page_title(nb: dict, module: str | None) -> None:
    "Escape the underscores of a first heading that is a bare identifier (`# __main__`), so it is not set in bold."
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        first, newline, rest = "".join(cell["source"]).partition("\n")
        m = re.fullmatch(r"(\s*#\s+)([A-Za-z_][\w.]*)\s*", first)
        if m and "_" in m.group(2):
            cell["source"] = m.group(1) + m.group(2).replace("_", "\\_") + newline + rest
        return


# --- documentation of exported names ---------------------------------------------------------------------------------

def _docments(source: str, node: ast.AST) -> dict[str, str]:
    """Per-parameter comments of a def in `source` (nbdev's docments): a comment belongs to the parameter that starts
    on its line, a comment-only line continues the one above; a comment after `) -> T:` alone documents the return."""
    args = node.args
    every = args.posonlyargs + args.args + ([args.vararg] if args.vararg else []) + args.kwonlyargs \
        + ([args.kwarg] if args.kwarg else [])
    header_end = node.body[0].lineno - 1 if node.body else node.lineno
    if node.body and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant):
        header_end = node.body[0].lineno - 1
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and node.lineno <= tok.start[0] <= header_end:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        return {}
    starts = {a.lineno: a.arg for a in every}      # the last parameter starting on each line
    out: dict[str, str] = {}
    current = None
    for line in range(node.lineno, header_end + 1):
        if line in starts:
            current = starts[line]
        elif node.returns is not None and line == node.returns.lineno and current is None:
            current = "return"
        if line in comments and current:
            out[current] = (out.get(current, "") + " " + comments[line]).strip()
    return out


def _annotation(a) -> str:
    if a is inspect.Parameter.empty:
        return ""
    if isinstance(a, str):
        return a
    if isinstance(a, type):
        return a.__qualname__ if a.__module__ == "builtins" else a.__name__
    return inspect.formatannotation(a).replace("typing.", "")


def _default(p: inspect.Parameter, owner=None) -> str:
    d = p.default
    if owner is not None and dataclasses.is_dataclass(owner):
        f = {f.name: f for f in dataclasses.fields(owner)}.get(p.name)
        if f is not None and f.default_factory is not dataclasses.MISSING:
            return f"{getattr(f.default_factory, '__name__', 'factory')}()"
    if inspect.isfunction(d) or inspect.isclass(d) or inspect.isbuiltin(d):
        return d.__name__
    text = repr(d)
    return "..." if text.startswith("<") or len(text) > 60 else text


def _signature(obj, drop_first: bool = False, owner=None) -> str | None:
    "`(a: int = 1, *, b=None) -> T` of a callable, from the installed object; None when it has none."
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    parts, star = [], False
    owner = owner if owner is not None else (obj if inspect.isclass(obj) else None)
    params = list(sig.parameters.values())[1 if drop_first else 0:]
    for i, p in enumerate(params):
        kind = p.kind
        if kind == p.VAR_POSITIONAL:
            star = True
            parts.append("*" + p.name + (f": {_annotation(p.annotation)}" if p.annotation is not p.empty else ""))
            continue
        if kind == p.VAR_KEYWORD:
            parts.append("**" + p.name + (f": {_annotation(p.annotation)}" if p.annotation is not p.empty else ""))
            continue
        if kind == p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = p.name + (f": {_annotation(p.annotation)}" if p.annotation is not p.empty else "")
        if p.default is not p.empty:
            text += (" = " if p.annotation is not p.empty else "=") + _default(p, owner)
        parts.append(text)
        if kind == p.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind != p.POSITIONAL_ONLY):
            parts.append("/")
    ret = "" if sig.return_annotation is sig.empty or inspect.isclass(obj) else f" -> {_annotation(sig.return_annotation)}"
    return f"({', '.join(parts)}){ret}"


def _ast_params(node, drop_first: bool = False) -> list[tuple[str, str, str]]:
    "(name with * or **, annotation, default) of a def's parameters as the notebook writes them."
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    rows = [(a.arg, a, d) for a, d in zip(positional, defaults)]
    if args.vararg:
        rows.append(("*" + args.vararg.arg, args.vararg, None))
    rows += [(a.arg, a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        rows.append(("**" + args.kwarg.arg, args.kwarg, None))
    rows = rows[1:] if drop_first and positional else rows
    return [(n, ast.unparse(a.annotation) if a.annotation is not None else "", ast.unparse(d) if d is not None else "")
            for n, a, d in rows]


def _ast_signature(node, drop_first: bool = False) -> str:
    "The signature as the notebook writes it, when the installed package lacks the object."
    parts, star = [], bool(node.args.vararg)
    kwonly = {a.arg for a in node.args.kwonlyargs}
    for name, anno, default in _ast_params(node, drop_first):
        if name in kwonly and not star:
            parts.append("*")
            star = True
        text = name + (f": {anno}" if anno else "")
        parts.append(text + ((" = " if anno else "=") + default if default else ""))
    ret = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"({', '.join(parts)}){ret}"


def _own_doc(obj) -> str:
    "The object's own docstring (not one inherited, not a dataclass's generated one)."
    doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else ""
    if inspect.isclass(obj):
        if "__doc__" not in vars(obj) or (dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "(")):
            return ""
    return inspect.cleandoc(doc) if doc else ""


def _fence(body: str) -> str:
    return "`" * max(3, max((len(m) for m in re.findall(r"`{3,}", body)), default=0) + 1)


def _no_env_maths(text: str) -> str:
    "`$NAME` of an environment variable code-formatted, so that MathJax does not take it for maths."
    def fix(m):
        inside_code = text[:m.start()].count("`") % 2 == 1
        return m.group(0) if inside_code else f"`{m.group(0)}`"
    return re.sub(r"(?<![\\`])\$[A-Z_][A-Z0-9_]*\b", fix, text)


_CODE_OR_MATH = re.compile(r"(`+)[^`]*?\1|\$\$.*?\$\$|\$[^$\n]+\$", re.S)


def _plain_brackets(text: str) -> str:
    "`<name>` written in prose shown as written, not taken for an HTML tag (code spans and maths left alone)."
    out, last = [], 0
    for m in _CODE_OR_MATH.finditer(text):
        out += [re.sub(r"<(?=[A-Za-z/!])", r"\\<", text[last:m.start()]), m.group(0)]
        last = m.end()
    return "".join(out + [re.sub(r"<(?=[A-Za-z/!])", r"\\<", text[last:])])


def _doc_text(doc: str) -> str:
    "A docstring as Markdown of the page."
    return _plain_brackets(_no_env_maths(doc))


def _cell(text: str) -> str:
    return _doc_text(text).replace("|", "\\|").replace("\n", " ")


def _params_table(docs: dict[str, str], sig_obj, drop_first: bool, node) -> str:
    "nbdev's docments table (parameter, type, default, details), when any parameter has a comment."
    if not any(docs.values()):
        return ""
    rows = []
    try:
        params = list(inspect.signature(sig_obj).parameters.values())[1 if drop_first else 0:] if sig_obj else []
    except (TypeError, ValueError):
        params = []
    if params:
        for p in params:
            name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
            default = "" if p.default is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) \
                else _default(p, sig_obj if inspect.isclass(sig_obj) else None)
            rows.append((name, _annotation(p.annotation), default, docs.get(p.name, "")))
    else:
        rows = [(n, anno, default, docs.get(n.lstrip("*"), "")) for n, anno, default in _ast_params(node, drop_first)]
    if docs.get("return"):
        rows.append(("**Returns**", "", "", docs["return"]))
    lines = ["|  | **Type** | **Default** | **Details** |", "| -- | -------- | ----------- | ----------- |"]
    for name, anno, default, doc in rows:
        name = name if name.startswith("**R") else f"`{name}`"
        lines.append(f"| {name} | {_cell(anno)} | {_cell(default)} | {_cell(doc)} |")
    return "\n".join(lines)


def _directive(kind: str, name: str, sig: str | None, options: dict, body: str) -> str:
    head = "{py:" + kind + "} " + name + (sig or "")
    opts = "".join(f":{k}:{(' ' + v) if v else ''}\n" for k, v in options.items())
    fence = _fence(body)
    return f"{fence}{head}\n{opts}\n{body}\n{fence}" if body else f"{fence}{head}\n{opts}{fence}"


def _decorators(node) -> dict[str, dict]:
    found = {}
    for d in node.decorator_list:
        call = d if isinstance(d, ast.Call) else None
        target = call.func if call else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        found[name] = {k.arg: ast.literal_eval(k.value) for k in (call.keywords if call else [])
                       if isinstance(k.value, ast.Constant)}
    return found


class ApiEntry(dict):
    "One documented name: module, name (`Cls.f` for a patched method), kind, summary, page."


def _summary(doc: str) -> str:
    "The docstring's first sentence, for the API index."
    first = " ".join(doc.strip().split("\n\n", 1)[0].split())
    m = re.search(r"(?<=\.)\s+(?=[A-Z`(])", first)
    first = first[:m.start()] if m else first
    return first if len(first) <= 160 or first.count("`") % 2 else first[:157].rsplit(" ", 1)[0] + " ..."


def _field_docs(node: ast.ClassDef, source: str, cls) -> dict[str, str]:
    "A dataclass's field documentation: the comment on (or above) each field, else a text in the field's metadata."
    docs, lines = {}, source.splitlines()
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            docs[stmt.target.id] = _comment_of(lines, stmt.lineno)
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            text = next((v for k, v in f.metadata.items() if k in ("doc", "help", "description") and isinstance(v, str)), "")
            if text and not docs.get(f.name):
                docs[f.name] = text
    return docs


def _document_node(node, source: str, module, modname: str, seen: set, page: str) -> tuple[str, ApiEntry] | None:
    "The MyST block that documents one top-level def or class of an export cell, and its API entry; None if private."
    decos = _decorators(node)
    patched = "patch" in decos and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    if node.name.startswith("_") or (patched and not (node.args.posonlyargs or node.args.args)):
        return None
    if patched:
        first = (node.args.posonlyargs or node.args.args)[0]
        owner_name = ast.unparse(first.annotation) if first.annotation is not None else ""
        if not re.fullmatch(r"[A-Za-z_]\w*", owner_name):
            return None
        name, owner = f"{owner_name}.{node.name}", getattr(module, owner_name, None)
        obj = inspect.getattr_static(owner, node.name, None) if owner is not None else None
        as_prop = decos["patch"].get("as_prop") or isinstance(obj, property)
        cls_method = decos["patch"].get("cls_method") or isinstance(obj, classmethod)
        func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
        kind = "property" if as_prop else "method"
        sig = None if as_prop else (_signature(func, drop_first=True) if func is not None
                                    else _ast_signature(node, drop_first=True))
        options = {"module": modname}
        if cls_method:
            options["classmethod"] = ""
        if as_prop and node.returns is not None:
            options["type"] = ast.unparse(node.returns)
        doc = _own_doc(func) if func is not None else (ast.get_docstring(node) or "")
        table = "" if as_prop else _params_table(_docments(source, node), func, True, node)
    else:
        name, obj = node.name, getattr(module, node.name, None)
        if obj is not None and getattr(obj, "__name__", node.name) != node.name and not inspect.isclass(obj):
            obj = getattr(obj, "__wrapped__", obj)
        is_class = isinstance(node, ast.ClassDef)
        kind = "class" if is_class else "function"
        options = {"module": modname}
        if is_class:
            sig = _signature(obj) if obj is not None else None
            doc = _own_doc(obj) if obj is not None else (ast.get_docstring(node) or "")
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is not None:
                table = _params_table(_docments(source, init), obj, False, init)
            else:
                table = _params_table(_field_docs(node, source, obj), obj, False, None) if obj is not None else ""
        else:
            func = inspect.unwrap(obj) if callable(obj) else None
            sig = _signature(func) if func is not None else _ast_signature(node)
            doc = _own_doc(func) if func is not None else (ast.get_docstring(node) or "")
            table = _params_table(_docments(source, node), func, False, node)
            if isinstance(node, ast.AsyncFunctionDef):
                options["async"] = ""
    full = f"{modname}.{name}"
    if full in seen:
        options["no-index"] = ""
    seen.add(full)
    body = "\n\n".join(part for part in (_doc_text(doc), table) if part)
    if kind == "class":
        members = [_document_member(n, source, obj, modname, name) for n in node.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]
        body = "\n\n".join(part for part in [body] + [m for m in members if m] if part)
    block = _directive(kind, name, sig, options, body)
    return block, ApiEntry(module=modname, name=name, kind=kind, summary=_summary(doc), page=page,
                           anchor=full if "no-index" not in options else None)


def _document_member(node, source: str, cls, modname: str, cls_name: str) -> str:
    "A public method or property written in a class's body, as a block nested in the class's."
    decos = _decorators(node)
    obj = inspect.getattr_static(cls, node.name, None) if cls is not None else None
    if "property" in decos or isinstance(obj, property):
        doc = _own_doc(obj.fget) if isinstance(obj, property) and obj.fget else (ast.get_docstring(node) or "")
        opts = {"type": ast.unparse(node.returns)} if node.returns is not None else {}
        return _directive("property", node.name, None, opts, _doc_text(doc))
    if isinstance(obj, property) or any(k in decos for k in ("setter", "deleter")):
        return ""
    func = getattr(obj, "__func__", obj)
    static = "staticmethod" in decos or isinstance(obj, staticmethod)
    opts = {"classmethod": ""} if ("classmethod" in decos or isinstance(obj, classmethod)) else {}
    if static:
        opts = {"staticmethod": ""}
    sig = _signature(func, drop_first=not static) if callable(func) else _ast_signature(node, drop_first=not static)
    doc = _own_doc(func) if callable(func) else (ast.get_docstring(node) or "")
    table = _params_table(_docments(source, node), func if callable(func) else None, not static, node)
    return _directive("method", node.name, sig, opts, "\n\n".join(p for p in (_doc_text(doc), table) if p))


def _public_assignments(tree: ast.Module) -> list[tuple[str, str]]:
    "Public names a cell assigns at its top level, with the comment on the assignment's line (if any)."
    found = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            for n in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", [])):
                if isinstance(n, ast.Name) and not n.id.startswith("_"):
                    found.append((n.id, node.lineno))
    return found


def _comment_of(lines: list[str], lineno: int) -> str:
    "The comment that explains the assignment on line `lineno` (1-based): the comment lines just above it, else its own."
    above = []
    for line in reversed(lines[:lineno - 1]):
        if not line.strip().startswith("#"):
            break
        above.insert(0, line.strip().lstrip("#").strip())
    if above:
        return " ".join(above)
    m = re.search(r"\s#\s*(.*)$", lines[lineno - 1]) if lineno <= len(lines) else None
    return m.group(1) if m and lines[lineno - 1].count('"') % 2 == 0 and lines[lineno - 1].count("'") % 2 == 0 else ""


def document_exports(nb: dict, modname: str, page: str, seen: set) -> list[ApiEntry]:
    """Put, above every export cell, the documentation of each public function, class and patched method it defines
    (signature, docstring, parameter table) and fold the cell's source beneath it, in place. Returns the entries."""
    try:
        module = importlib.import_module(modname)
    except Exception as e:   # the site still builds from what the notebook says
        print(f"build_docs: {modname} not importable ({type(e).__name__}: {e}); documenting from the notebook",
              file=sys.stderr)
        module = None
    public = set(getattr(module, "__all__", []) or [])
    entries, cells = [], []
    for cell in nb["cells"]:
        if not cell.get("metadata", {}).pop("mtl_meta_export", False):
            cells.append(cell)
            continue
        source = "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:
            cells.append(cell)
            continue
        blocks = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                done = _document_node(node, source, module, modname, seen, page)
                if done:
                    blocks.append(done[0])
                    entries.append(done[1])
        lines = source.splitlines()
        for name, lineno in _public_assignments(tree):
            if name in public or module is None:
                full = f"{modname}.{name}"
                opts = {"module": modname}
                value = getattr(module, name, None) if module is not None else None
                if value is not None:
                    opts["type"] = type(value).__name__
                    text = repr(value)
                    if len(text) <= 60 and not text.startswith("<"):
                        opts["value"] = text
                if full in seen:
                    opts["no-index"] = ""
                seen.add(full)
                comment = _comment_of(lines, lineno)
                blocks.append(_directive("data", name, None, opts, _doc_text(comment)))
                entries.append(ApiEntry(module=modname, name=name, kind="data", summary=_summary(comment), page=page,
                                        anchor=full if "no-index" not in opts else None))
        if blocks:
            cells.append({"cell_type": "markdown", "id": f"{cell.get('id', 'c')}-doc", "metadata": {},
                          "source": "\n\n".join(blocks)})
        elif cells and cells[-1].get("metadata", {}).get("mtl_meta_folded") and not cell.get("outputs") \
                and not cells[-1].get("outputs"):
            # nothing to document (imports, private helpers): its source joins the folded source just above
            cells[-1]["source"] = "".join(cells[-1]["source"]).rstrip("\n") + "\n\n\n" + source
            continue
        cell["metadata"]["mtl_meta_folded"] = True
        tags = cell["metadata"].setdefault("tags", [])
        if "hide-input" not in tags:
            tags.append("hide-input")
        cells.append(cell)
    for cell in cells:
        cell.get("metadata", {}).pop("mtl_meta_folded", None)
    nb["cells"] = cells
    return entries


def api_page(entries: list[ApiEntry], pages: dict[str, str], root: Path = ROOT) -> str:
    """The API index: every name of every module's `__all__`, linked to where its page documents it (the anchor
    of its documentation, or the page of the notebook that exports it)."""
    documented = {(e["module"], e["name"]): e for e in entries if e.get("anchor")}
    lines = ["# API index", "",
             "Every public name of the package (each module's `__all__`), linked to its documentation in the "
             "notebook that defines it. `from mtl_meta.<module> import <name>` imports it.", ""]
    for modname, page in pages.items():
        try:
            names = list(getattr(importlib.import_module(modname), "__all__", []))
        except Exception:
            names = sorted({e["name"] for e in entries if e["module"] == modname and "." not in e["name"]})
        patched = sorted(e["name"] for e in entries if e["module"] == modname and "." in e["name"] and e.get("anchor"))
        if not names and not patched:
            continue
        lines += [f"## [`{modname}`]({page})", "", "| name | kind | summary |", "| --- | --- | --- |"]
        for name in names + [n for n in patched if n not in names]:
            e = documented.get((modname, name))
            if e:
                link = "{py:" + ("obj" if e["kind"] != "data" else "data") + "}" + f"`{name} <{e['anchor']}>`"
                lines.append(f"| {link} | {e['kind']} | {_cell(e['summary'])} |")
            else:
                lines.append(f"| [`{name}`]({page}) | | |")
        lines.append("")
    return "\n".join(lines)


def _short_command(command: str, keep: int = 3) -> str:
    "A command as recorded, with a long `--only` list cut to its first names and a count of the rest."
    words = command.split()
    if "--only" not in words:
        return command
    i = words.index("--only") + 1
    j = next((k for k in range(i, len(words)) if words[k].startswith("-")), len(words))
    if j - i <= keep:
        return command
    return " ".join(words[:i + keep] + [f"... ({j - i - keep} more)"] + words[j:])


def run_note(run_dir: Path, page: Path, src: Path, root: Path = ROOT) -> str:
    "The line under a run page's title: the command that executed it, at which commit and when, and the current notebook."
    try:
        rec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rec = {}
    code = rec.get("code") or {}
    commit = str(code.get("commit") or "")[:7]
    when = str(rec.get("finished") or "")[:10]
    notebook = (rec.get("config") or {}).get("notebook") or ""
    parts = [f"Executed by `{_short_command(rec['command'])}`" if rec.get("command") else "Executed by `make reproduce`"]
    parts.append(f" at commit `{commit}`" + (" with uncommitted changes" if code.get("dirty") else "")
                 if commit else " (the code version was not recorded)")
    if when:
        parts.append(f" on {when}")
    if rec.get("status") and rec["status"] != "ok":
        parts.append(f", status {rec['status']}")
    text = "".join(parts) + "; this page shows the notebook as it was then"
    current = Path("nbs") / "experiments" / notebook
    if notebook and (root / current).is_file():
        up = "../" * (len(page.relative_to(src).parts) - 1)
        text += f", see the current notebook: [{current.as_posix()}]({up}{current.as_posix()})"
    return "*" + text + ".*"


def _stage_run(path: Path, src: Path, root: Path = ROOT) -> str:
    """Stage an executed run: titled by its run folder (all runs of one experiment share a heading), marked with the
    code that ran it, directives stripped, its paths made neutral and environment warnings dropped."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    params = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {}
    known = {params[k]: name for k, name in (("data_root", "<data>"), ("out_dir", "<out>")) if params.get(k)}
    strip_directives(nb)
    clean_outputs(nb, known, sources=True)
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
                           "source": f"# Run `{path.parent.name}`\n\n" + run_note(root / path.relative_to(src).parent,
                                                                               path, src, root)})
    path.write_text(json.dumps(nb), encoding="utf-8")
    return str(path.relative_to(src).with_suffix(""))


def stage_notebook(nb: dict, rel: str, seen: set) -> list[ApiEntry]:
    "Turn a source notebook into its page, in place: see `strip_directives`, `document_exports`, `clean_outputs`."
    module = strip_directives(nb)
    page_title(nb, module)
    entries = []
    if module and re.match(r"nbs/\d", rel):
        modname = f"mtl_meta.{module}"
        entries = document_exports(nb, modname, rel, seen)
    clean_outputs(nb)
    return entries


# --- checks of what the pages show -----------------------------------------------------------------------------------

class _Text(HTMLParser):
    "A page's visible text, and the part of it that stored outputs show."
    def __init__(self):
        super().__init__()
        self.text, self.outputs, self._skip, self._stack = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "div":
            self._stack.append("cell_output" in (dict(attrs).get("class") or ""))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "div" and self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if any(self._stack):
            self.outputs.append(data)


def leaks(text: str, outputs: str | None = None) -> list[str]:
    "Machine paths in `text` and environment warnings in `outputs` (all of `text` when not given)."
    found = [f"machine path {m.group(0)!r}" for m in MACHINE_PATH.finditer(text)]
    found += [f"environment warning {m.group(0)[:80]!r}" for m in ENV_WARNING.finditer(text if outputs is None else outputs)]
    return found


def page_leaks(out: Path) -> list[str]:
    "Machine paths and environment warnings that the pages of a built site show."
    problems = []
    for page in sorted(out.rglob("*.html")):
        parser = _Text()
        parser.feed(page.read_text(encoding="utf-8"))
        for leak in dict.fromkeys(leaks("".join(parser.text), "".join(parser.outputs))):
            problems.append(f"{page.relative_to(out)}: {leak}")
    return problems


def notebook_output_leaks(root: Path = ROOT) -> list[str]:
    "Machine paths and environment warnings in the stored outputs of the repository's notebooks (outputs only)."
    problems = []
    for path in sorted((root / "nbs").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        texts = []
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                texts.append("".join(out.get("text", "")))
                texts += ["".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
                texts += out.get("traceback", [])
        for leak in dict.fromkeys(leaks("\n".join(texts))):
            problems.append(f"{path.relative_to(root)}: {leak}")
    return problems


def _module_of(path: Path) -> str | None:
    "`mtl_meta.<module>` of a library notebook's `#| default_exp`, None for other notebooks."
    if not re.match(r"\d", path.name):
        return None
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        found = cell_directives(cell)
        if "default_exp" in found:
            return "mtl_meta." + found["default_exp"].split()[0]
    return None


def _in_order(modules: dict[str, str], order: list[str]) -> list[str]:
    return sorted(modules, key=lambda m: order.index(modules[m]) if modules[m] in order else len(order))


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
    seen: set = set()
    entries: list[ApiEntry] = []
    modules: dict[str, str] = {}
    for rel in site_notebooks(root):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        text = (root / rel).read_text(encoding="utf-8")
        # nbs/index.ipynb is the site's root page, one folder up from where it sits in the repository
        up = "../" * (len(Path(rel).parts) - 1)
        nb = json.loads(text.replace("](index.ipynb)", f"]({up}index.ipynb)"))
        found = stage_notebook(nb, rel, seen)
        entries += found
        module = next((e["module"] for e in found), None) or _module_of(root / rel)
        if module:
            modules[module] = rel
        (src / rel).write_text(json.dumps(nb), encoding="utf-8")
    shutil.copytree(root / "figures", src / "figures",
                    ignore=shutil.ignore_patterns("*.pt", "*.tmp", ".*"))
    for md in sorted((root / "benchmarks").rglob("*.md")):   # measured results and the GPU checklist
        (src / md.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(md, src / md.relative_to(root))
    figure_pages = sorted(str(p.relative_to(src).with_suffix(""))
                          for folder in ("figures", "benchmarks") for p in (src / folder).rglob("*.md"))
    run_pages = [_stage_run(p, src, root) for p in sorted((src / "figures").rglob("*.ipynb"))]
    current = [p for p in run_pages if p.startswith("figures/runs/")]
    earlier: dict[str, list[str]] = {}
    for p in run_pages:
        if not p.startswith("figures/runs/"):
            earlier.setdefault(p.split("/runs/", 1)[0], []).append("/" + p)
    runs_index = src / "figures" / "runs" / "index.md"
    runs_index.parent.mkdir(parents=True, exist_ok=True)
    runs_index.write_text("# Executed runs\n\nEvery run of the committed reproduction, as executed by `make reproduce`"
                          " (parameters injected by papermill, outputs as they ran).\n\n"
                          + _toctree("Executed runs", [str(Path(p).relative_to("figures/runs")) for p in current])
                          + "".join("\n" + _toctree(f"Runs kept in {folder}/", pages) for folder, pages in earlier.items()),
                          encoding="utf-8")
    (src / "api.md").write_text(api_page(entries, {m: modules[m] for m in _in_order(modules, order)}, root),
                                encoding="utf-8")
    index = json.loads((root / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    strip_directives(index)
    clean_outputs(index)
    nav = ("```{toctree}\n:hidden:\n:caption: Reading order\n:maxdepth: 1\n\n"
           + "\n".join(p.removesuffix(".ipynb") for p in order) + "\n```\n\n"
           + "".join(_results_toctrees(figure_pages))
           + "```{toctree}\n:hidden:\n:caption: Executed runs\n:maxdepth: 1\n\nfigures/runs/index\n```\n\n"
           + "```{toctree}\n:hidden:\n:caption: Reference\n:maxdepth: 1\n\napi\n```\n\n"
           + "Every public name of the package, with a link to its documentation: [API index](api.md).\n")
    index["cells"].append({"cell_type": "markdown", "id": "sitenav", "metadata": {},
                           "source": nav.splitlines(keepends=True)})
    (src / "index.ipynb").write_text(json.dumps(index, indent=1), encoding="utf-8")


def _results_toctrees(figure_pages: list[str]) -> list[str]:
    """The navigation's results, one captioned toctree per folder, so that pages of the same title in two folders
    (`figures/cost` and `figures/cpu-2026-11/cost`) are told apart: the current profile's and the benchmarks'
    pages under "Results", each sub-folder of `figures/` under its own caption."""
    groups: dict[str, list[str]] = {}
    for page in figure_pages:
        parts = page.split("/")
        sub = parts[1] if parts[0] == "figures" and len(parts) > 2 else ""
        groups.setdefault(sub, []).append(page)
    captions = {"": "Results", "regimes": "Results: the regime map (figures/regimes)"}
    return ["```{toctree}\n:hidden:\n:caption: " + captions.get(sub, f"Results kept in figures/{sub}")
            + "\n:maxdepth: 1\n\n" + "\n".join(pages) + "\n```\n\n"
            for sub, pages in sorted(groups.items(), key=lambda kv: (kv[0] != "", kv[0] != "regimes", kv[0]))]


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
    return problems + page_leaks(out)


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
