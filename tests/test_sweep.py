"""Runs of a profile executed concurrently (--jobs) or as submitit jobs give the tables of a serial
run, and a run's noise goes into its log instead of the terminal."""
import importlib.util
import json

import pandas as pd
import pytest

FEWSHOT = ["omniglot-minimal-5w1s-mtl", "omniglot-minimal-5w1s-protonet"]
TRIALS = ["tune-omniglot-minimal-5w1s-mtl-t0", "tune-omniglot-minimal-5w1s-protonet-t0"]   # the finals are tuned
SAME = ["dataset", "backbone", "ways", "shots", "method", "seeds", "test_episodes", "acc", "ci95_episodes"]


def _fewshot(run_cli, root, out, *extra):
    r = run_cli("reproduce", "--profile", "smoke", "--only", *TRIALS, *FEWSHOT, "--out", str(out), "--no-progress",
                "--data-root", str(root), *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r, pd.read_csv(out / "fewshot.csv")[SAME]


@pytest.mark.slow
def test_jobs_and_submitit_give_the_serial_tables(run_cli, omniglot_root, tmp_path):
    r1, serial = _fewshot(run_cli, omniglot_root, tmp_path / "serial")
    # one line per finished run: status, name, seconds, headline; nothing on stderr
    lines = r1.stdout.strip().splitlines()
    assert len(lines) == 5 and all(l.startswith("ok ") for l in lines[:4]), r1.stdout
    assert sum("validation accuracy" in l for l in lines) == 2 and sum("test accuracy" in l for l in lines) == 2
    assert r1.stderr == ""
    log = (tmp_path / "serial" / "runs" / FEWSHOT[0] / f"{FEWSHOT[0]}.log")
    assert log.exists()
    r2, parallel = _fewshot(run_cli, omniglot_root, tmp_path / "jobs", "--jobs", "2")
    pd.testing.assert_frame_equal(serial, parallel)
    if importlib.util.find_spec("submitit") is None:
        pytest.skip("submitit is not installed (pip install \"mtl_meta[slurm]\")")
    r3, jobs = _fewshot(run_cli, omniglot_root, tmp_path / "submitit", "--executor", "submitit-local")
    pd.testing.assert_frame_equal(serial, jobs)
    rec = json.loads((tmp_path / "submitit" / "runs" / FEWSHOT[1] / "run.json").read_text())
    assert rec["status"] == "ok"
    # resumed like a local run: complete runs are skipped
    again = run_cli("reproduce", "--profile", "smoke", "--only", *TRIALS, *FEWSHOT, "--out", str(tmp_path / "submitit"),
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
