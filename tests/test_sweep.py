"""Runs of a profile executed concurrently (--jobs) or as submitit jobs give the tables of a serial
run, and a run's noise goes into its log instead of the terminal."""
import importlib.util
import json

import pandas as pd
import pytest

FEWSHOT = ["omniglot-minimal-5w1s-mtl", "omniglot-minimal-5w1s-protonet"]
TRIALS = ["tune-omniglot-minimal-5w1s-mtl-t0", "tune-omniglot-minimal-5w1s-protonet-t0"]   # the finals are tuned
SAME = ["dataset", "backbone", "ways", "shots", "method", "seeds", "test_episodes", "acc", "ci95_episodes"]


def _copy_runs(src, dst, names):
    "Copy the complete runs `names` of the output folder `src` into `dst`, which then skips them."
    import shutil
    for name in names:
        shutil.copytree(src / "runs" / name, dst / "runs" / name)


def _fewshot(run_cli, root, out, *extra, only=(*TRIALS, *FEWSHOT)):
    r = run_cli("reproduce", "--profile", "smoke", "--only", *only, "--out", str(out), "--no-progress",
                "--data-root", str(root), *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r, pd.read_csv(out / "fewshot.csv")[SAME]


@pytest.mark.slow
def test_jobs_and_submitit_give_the_serial_tables(run_cli, omniglot_root, smoke_reproduction, tmp_path):
    r1, out = smoke_reproduction                 # the serial reference: the smoke profile, one run after another
    serial = pd.read_csv(out / "fewshot.csv")[SAME]
    assert set(serial.method) == {"mtl", "protonet"}
    # one line per finished run: status, name, seconds, headline; nothing on stderr
    lines = {l.split()[1]: l for l in r1.stdout.strip().splitlines()[:-1]}
    assert all(l.startswith("ok ") for l in lines.values()), r1.stdout
    assert all("validation accuracy" in lines[t] for t in TRIALS) and all("test accuracy" in lines[f] for f in FEWSHOT)
    assert r1.stderr == ""
    assert (out / "runs" / FEWSHOT[0] / f"{FEWSHOT[0]}.log").exists()
    # the tuning trials come from the serial reference (copied, so skipped): the two final runs go concurrently
    _copy_runs(out, tmp_path / "jobs", TRIALS)
    r2, parallel = _fewshot(run_cli, omniglot_root, tmp_path / "jobs", "--jobs", "2")
    status = {l.split()[1]: l.split()[0] for l in r2.stdout.splitlines() if len(l.split()) > 1}
    assert [status.get(t) for t in TRIALS] == ["skipped"] * 2 and [status.get(f) for f in FEWSHOT] == ["ok"] * 2, r2.stdout
    pd.testing.assert_frame_equal(serial, parallel)
    if importlib.util.find_spec("submitit") is None:
        pytest.skip("submitit is not installed (pip install \"mtl_meta[slurm]\")")
    # submitit's path, on one method's final run (its trial copied; the runs themselves are the local ones)
    one = (TRIALS[1], FEWSHOT[1])
    _copy_runs(out, tmp_path / "submitit", TRIALS[1:])
    r3, jobs = _fewshot(run_cli, omniglot_root, tmp_path / "submitit", "--executor", "submitit-local", only=one)
    protonet = lambda t: t[t.method == "protonet"].reset_index(drop=True)   # mtl's rows are pending there
    pd.testing.assert_frame_equal(protonet(serial), protonet(jobs))
    rec = json.loads((tmp_path / "submitit" / "runs" / FEWSHOT[1] / "run.json").read_text())
    assert rec["status"] == "ok"
    # resumed like a local run: complete runs are skipped
    again = run_cli("reproduce", "--profile", "smoke", "--only", *one, "--out", str(tmp_path / "submitit"),
                    "--no-progress", "--data-root", str(omniglot_root), "--executor", "submitit-local")
    assert again.returncode == 0 and again.stdout.startswith("skipped")


def test_missing_submitit_is_one_line_naming_the_extra(run_cli, tmp_path):
    if importlib.util.find_spec("submitit") is not None:
        pytest.skip("submitit is installed")
    r = run_cli("reproduce", "--profile", "smoke", "--only", "environment", "--out", str(tmp_path), "--no-progress",
                "--executor", "slurm")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and 'pip install "mtl_meta[slurm]"' in r.stderr


def test_bad_parameter_type_stops_reproduce_before_any_run(run_cli, tmp_path):
    r = run_cli("reproduce", "--profile", "smoke", "--only", "environment", "--out", str(tmp_path / "o"),
                "--no-progress", "--set", 'matmul_size="big"')
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "run environment: bad parameter: matmul_size must be int, got str 'big'" in r.stderr
    assert not (tmp_path / "o" / "runs").exists()
