"""The `mtl-meta` console script as a user meets it: help, version, reproduce, errors."""
import json
import os
from pathlib import Path

import nbformat
import pytest

import mtl_meta


def test_help_explains_every_option(run_cli):
    top = run_cli("--help")
    assert top.returncode == 0 and "reproduce" in top.stdout and "data" in top.stdout
    rep = run_cli("reproduce", "--help")
    assert rep.returncode == 0
    for opt in ["--profile", "--out", "--only", "--force", "--list", "--data-root", "--no-progress"]:
        assert opt in rep.stdout, opt


def test_version(run_cli):
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mtl-meta {mtl_meta.__version__}"


def test_unknown_profile_is_one_line_error(run_cli, tmp_path):
    r = run_cli("reproduce", "--profile", "fastest", "--out", str(tmp_path))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "invalid choice: 'fastest'" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreadable_data_root_is_one_line_error(run_cli, tmp_path):
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "o"),
                "--data-root", str(tmp_path / "missing"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"mtl-meta: error: data root {tmp_path / 'missing'} does not exist; pass --data-root or set MTL_META_DATA")
    assert f"mtl-meta data download --dataset omniglot-minimal --data-root {tmp_path / 'missing'}" in lines[0]
    assert not (tmp_path / "o" / "runs").exists()  # nothing was run


def test_reproduce_smoke_then_resume(run_cli, tmp_path):
    out = tmp_path / "out"
    # one run is enough to check resuming (test_reproduce runs the whole smoke profile)
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--only", "environment")
    assert r.returncode == 0, r.stderr
    env = json.loads((out / "runs/environment/environment.json").read_text())
    assert env["matmul"]["gflops"] > 0 and env["packages"]["torch"]
    executed = nbformat.read(out / "runs/environment/environment.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    record = json.loads((out / "runs/environment/run.json").read_text())
    assert record["status"] == "ok" and record["command"].startswith("mtl-meta reproduce --profile smoke")
    summary = (out / "reproduction.md").read_text()
    again = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--only", "environment")
    assert again.returncode == 0 and again.stdout.startswith("skipped")
    assert (out / "reproduction.md").read_text() == summary  # no timings: byte-stable


def test_failing_notebook_keeps_executed_notebook_and_others_finish(tmp_path, monkeypatch):
    from mtl_meta import profiles, reproduce as rep, runs
    bad = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("out_dir = '.'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("raise ValueError('the loss diverged')")]
    nbformat.write(nb, bad)
    monkeypatch.setitem(profiles.PROFILES, "broken", [runs.Run("bad", str(bad)),
                                                 runs.Run("environment", "environment.ipynb", {"matmul_size": 32})])
    results = rep.reproduce("broken", out=tmp_path / "o", watch=rep.Watch(progress=False))
    assert [r.status for r in results] == ["failed", "ok"]
    assert "ValueError: the loss diverged" in results[0].error
    assert results[0].notebook.exists()  # kept for inspection
    rec = json.loads((tmp_path / "o/runs/bad/run.json").read_text())
    assert rec["status"] == "failed"
    # a failed run is not 'complete': the next invocation tries it again
    assert not runs.is_complete(tmp_path / "o", profiles.PROFILES["broken"][0], "broken")


def test_cli_reports_failed_run_on_one_line(tmp_path):
    """The CLI names the failed run and the kept notebook on one stderr line, exit status 1."""
    import contextlib, io
    from mtl_meta import profiles, reproduce as rep, runs
    from mtl_meta.cli import main
    bad = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1/0")]
    nbformat.write(nb, bad)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(profiles.PROFILES, "smoke", [runs.Run("bad", str(bad))])
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(["reproduce", "--profile", "smoke", "--out", str(tmp_path / "o"), "--no-progress"])
    lines = err.getvalue().strip().splitlines()
    assert status == 1
    assert len(lines) == 1 and "run 'bad' failed (ZeroDivisionError" in lines[0]
    assert str(tmp_path / "o/runs/bad/bad.ipynb") in lines[0]


def test_changed_parameters_clear_the_run_and_never_leave_stale_results(tmp_path, monkeypatch):
    from mtl_meta import profiles, reproduce as rep, runs
    nbp = tmp_path / "writer.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("out_dir = '.'\nv = 0\nfail = False", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import json, pathlib\n"
                                          "if fail: raise RuntimeError('boom')\n"
                                          "pathlib.Path(out_dir, 'marker').write_text(str(v))\n"
                                          "pathlib.Path(out_dir, 'results.json').write_text(json.dumps({'v': v}))")]
    nbformat.write(nb, nbp)
    out = tmp_path / "o"
    monkeypatch.setitem(profiles.PROFILES, "t", [runs.Run("w", str(nbp), {"v": 1})])
    assert [r.status for r in rep.reproduce("t", out=out, watch=rep.Watch(progress=False))] == ["ok"]
    assert json.loads((out / "runs/w/results.json").read_text()) == {"v": 1}
    monkeypatch.setitem(profiles.PROFILES, "t", [runs.Run("w", str(nbp), {"v": 2, "fail": True})])
    assert [r.status for r in rep.reproduce("t", out=out, watch=rep.Watch(progress=False))] == ["failed"]
    assert not (out / "runs/w/results.json").exists() and not (out / "runs/w/marker").exists()


def _main_stderr(args):
    import contextlib, io
    from mtl_meta.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        status = main(args)
    return status, out.getvalue(), err.getvalue().strip().splitlines()


def test_data_download_writes_the_official_files_atomically(tmp_path, monkeypatch, omniglot_root):
    import urllib.request
    from mtl_meta import data
    fetched = []
    official = lambda url: (omniglot_root / "omniglot" / url.rsplit("/", 1)[1]).read_bytes()  # published SHA256
    class _Response:
        def __init__(self, url): self.url = url
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def read(self): return official(self.url)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: fetched.append(url) or _Response(url))
    status, out, err = _main_stderr(["data", "download", "--dataset", "omniglot-minimal",
                                     "--data-root", str(tmp_path / "root")])
    assert status == 0 and err == []
    assert [u.rsplit("/", 1)[1] for u in fetched] == list(data.OMNIGLOT_MINIMAL_ARCHIVES)
    for url in fetched:
        f = tmp_path / "root" / "omniglot" / url.rsplit("/", 1)[1]
        assert f.read_bytes() == official(url)
    assert not list((tmp_path / "root").rglob("*.tmp*"))


def test_data_download_errors_are_one_line(tmp_path, monkeypatch):
    import urllib.error, urllib.request
    status, _, err = _main_stderr(["data", "download", "--dataset", "mini-imagenet", "--data-root", str(tmp_path)])
    assert status != 0 and len(err) == 1 and "no official public download" in err[0]
    def offline(url, timeout): raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    status, _, err = _main_stderr(["data", "download", "--dataset", "omniglot-minimal", "--data-root", str(tmp_path)])
    assert status != 0 and len(err) == 1
    assert "cannot download https://github.com/brendenlake/omniglot" in err[0] and "Name or service not known" in err[0]
    assert not (tmp_path / "omniglot").exists() or not any((tmp_path / "omniglot").iterdir())


# --- train and evaluate: every option is built from the API, so its default is the API's ---------------------------

CLI_ONLY = {"train": {"devices", "no_progress"}, "evaluate": {"json", "no_progress"}}   # no API parameter behind them
RENAMED = {"rotations": "train_rotations", "out": "out_dir"}   # option -> the API parameter or field it feeds


def _subcommand_options(command: str) -> dict:
    "dest -> argparse action of every option of `mtl-meta COMMAND` (help left out)."
    import argparse
    from mtl_meta.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions if a.dest != "help"}


def _api_parameters(fn, *records) -> dict:
    "name -> default of the parameters of `fn` and the fields of `records` (inspect.EMPTY: no default)."
    import inspect
    from dataclasses import fields
    out = {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_KEYWORD}
    for record in records:
        out.update({f.name: f.default for f in fields(record)})
    return out


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_every_option_defaults_to_the_api(command):
    import inspect
    from dataclasses import fields
    from mtl_meta import api
    from mtl_meta.train import TrainConfig
    config = TrainConfig if command == "train" else api.EvalConfig
    records = (config, api.DataOptions, api.ModelOptions, api.RunOptions) if command == "train" else (config,)
    params = _api_parameters(getattr(api, command), *records)
    options = _subcommand_options(command)
    assert CLI_ONLY[command] <= set(options)
    for dest, action in options.items():
        if dest in CLI_ONLY[command]:
            continue
        name = RENAMED.get(dest, dest)
        assert name in params, f"--{dest} of {command} feeds no parameter of api.{command} or its records"
        if action.required:   # the CLI asks for it; the API takes it as an argument
            continue
        assert params[name] is not inspect.Parameter.empty, f"--{dest} is optional but api.{command} requires {name}"
        assert action.default == params[name], (dest, action.default, params[name])
    # every field of the training (test) config has its option, with the field's choices where it names them
    for f in fields(config):
        assert f.name in options, f"{config.__name__}.{f.name} has no option in mtl-meta {command}"
        if f.metadata.get("choices"):
            assert options[f.name].choices == list(f.metadata["choices"])


def test_train_and_evaluate_without_options_call_the_api_with_its_defaults(monkeypatch, tmp_path):
    import functools
    import inspect
    from dataclasses import asdict, replace
    from types import SimpleNamespace
    from mtl_meta import api, cli
    from mtl_meta.train import TrainConfig
    calls = {}
    signatures = {f: inspect.signature(getattr(api, f)) for f in ("train", "evaluate")}
    def fake(name, result):
        @functools.wraps(getattr(api, name))   # the parser still reads the real signature
        def call(*args, **kwargs):
            calls[name] = signatures[name].bind(*args, **kwargs).arguments
            return result
        return call
    monkeypatch.setattr(api, "train", fake("train", {"steps": 1, "train_seconds": 0.5, "best_val_acc": 0.5,
                                                     "best_epoch": 1, "epochs": 2, "stopped": "max_steps reached"}))
    monkeypatch.setattr(api, "evaluate", fake("evaluate", SimpleNamespace(ways=5, shots=1, mean=0.5, ci95=0.1)))
    assert cli.main(["train", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    got = calls["train"]
    defaults = signatures["train"].parameters
    assert [got[k] for k in ("method", "dataset", "backbone")] == [defaults[k].default for k in ("method", "dataset", "backbone")]
    assert got["data"] == api.DataOptions() and got["model"] == api.ModelOptions()
    # the CLI's one difference: without --no-progress it shows a bar, with it one line per epoch (and its CPU note)
    assert got["run"] == replace(api.RunOptions(), progress=False, epoch_lines=True, before_fit=cli._warn_cpu_budget)
    assert got["options"] == asdict(TrainConfig())
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "o"), "--no-progress"]) == 0
    got = calls["evaluate"]
    assert got["config"] == api.EvalConfig() and got["dataset"] is None and got["data_root"] is None
    assert got["device"] == signatures["evaluate"].parameters["device"].default and got["progress"] is False


def test_reproduce_records_the_formatted_command(tmp_path, monkeypatch):
    "The command recorded for `mtl-meta reproduce` is the one `reproduce_command` formats."
    from mtl_meta import reproduce as rep
    from mtl_meta.cli import main
    from mtl_meta.profiles import reproduce_command
    seen = {}
    monkeypatch.setattr(rep, "reproduce", lambda profile, **kw: seen.update(kw) or [])
    assert main(["reproduce", "--profile", "smoke", "--out", str(tmp_path), "--only", "environment", "theory",
                 "--set", "device=cpu", "--no-progress"]) == 0
    assert seen["watch"].command == reproduce_command("smoke", tmp_path, only=["environment", "theory"],
                                                      overrides=["device=cpu"])
    assert seen["watch"].command == f"mtl-meta reproduce --profile smoke --only environment theory --out {tmp_path} --set device=cpu"
