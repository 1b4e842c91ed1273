"""The benchmark scripts run end to end on tiny settings and print a row for everything they measure.

No timing is asserted (speed is what the scripts report, not what tests check); these tests only
catch a script that no longer runs against the package, e.g. a new algorithm it cannot time."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str, env: dict | None = None) -> str:
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                       timeout=600, cwd=REPO, env={**os.environ, **(env or {})})
    assert r.returncode == 0, f"{script} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def table_rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ") and "---" not in line]


def test_bench_algorithms_times_every_algorithm():
    from mtl_meta.gbml import ALGORITHMS
    out = bench("bench_algorithms.py", "--shots", "1", "--reps", "1", "--warmup", "0", "--queries", "2",
                "--extra-inner-steps")
    rows = table_rows(out)[1:]                       # first row: the header
    assert {r[1] for r in rows} == set(ALGORITHMS)
    assert all(float(r[3]) > 0 for r in rows)
    assert next(float(r[5]) for r in rows if r[1] == "mtl") == 1.0   # MTL is the reference


def test_bench_mtl_step_prints_both_steps():
    out = bench("bench_mtl_step.py", "--reps", "1", "--backbones", "conv4", "--amp", "bf16", "--channels-last")
    rows = [line.split() for line in out.splitlines() if line.startswith("conv4")]
    assert [r[1] for r in rows] == ["1x28x28", "3x84x84"]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)


def test_bench_ntk_runs_kernels_and_finite_widths():
    out = bench("bench_ntk.py", "--points", "20", "--depths", "1", "2", "--widths", "16", "--seeds", "1", "--steps", "5")
    assert "depth" in out and any(line.split()[:1] == ["16"] for line in out.splitlines())


@pytest.mark.slow
def test_bench_adapt_and_episodes_on_real_omniglot(omniglot_root):
    env = {"MTL_META_DATA": str(omniglot_root)}
    out = bench("bench_adapt.py", "--episodes", "10", "--batch", "5", env=env)
    assert sum(line.startswith(("omniglot", "clustered")) for line in out.splitlines()) == 4
    out = bench("bench_episodes.py", "--seconds", "0.2", env=env)
    assert "omniglot-minimal/train" in out


@pytest.mark.parametrize("method", ["mtl", "maml", "metaoptnet-rr"])
def test_patience_probe_rebuilds_the_committed_runs_training(method, monkeypatch):
    "Parsed by the CLI, the probe's `profile` command gives the committed seed's exact training config and options."
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from patience_probe import train_command
    from mtl_meta.cli import _parse_overrides, _train_config, build_parser
    run = REPO / "figures" / "cpu-2026-11" / "runs" / f"omniglot-minimal-5w1s-{method}"
    params = json.loads((run / "run.json").read_text())["config"]["parameters"]
    committed = json.loads((run / "seed1" / "summary.json").read_text())
    for schedule, changed in (("profile", set()), ("patient", {"lr_patience", "early_stop_patience", "epochs"})):
        args = build_parser().parse_args(train_command(params, schedule, 1, Path("unused"))[1:])
        config = _train_config(args)
        from mtl_meta.train import TrainConfig
        added = set(config) - set(committed["config"])   # fields added since: at defaults that keep the old schedule
        assert all(config[k] == TrainConfig.__dataclass_fields__[k].default for k in added), added
        differs = {k for k in config if k not in added and config[k] != committed["config"][k]}
        assert differs == changed, (schedule, {k: (config[k], committed["config"][k]) for k in differs})
        meta = committed["metadata"]
        assert (args.method, args.dataset, args.backbone, args.rotations, args.augment) == (
            meta["method"], meta["dataset"], meta["backbone"], meta["train_rotations"], meta["augment"])
        assert _parse_overrides(args.algorithm_options, "--option") == committed["metadata"]["algorithm_options"]


@pytest.mark.slow
def test_patience_probe_runs_end_to_end(omniglot_root, tmp_path):
    "A one-epoch committed run, retrained under both schedules and tested on the same episodes."
    train_config = {"ways": 5, "shots": 1, "queries": 1, "train_ways": 5, "epochs": 1, "episodes_per_epoch": 2,
                    "val_episodes": 2, "val_queries": 2, "val_adapt": "centroid", "lr": 0.01, "head_lr": 0.1,
                    "lr_patience": 2, "early_stop_patience": 4}
    params = {"method": "mtl", "dataset": "omniglot-minimal", "backbone": "conv4", "adapt": "centroid",
              "train_rotations": False, "algorithm_options": {}, "train_config": train_config}
    run_json = tmp_path / "figures" / "runs" / "omniglot-minimal-5w1s-mtl" / "run.json"
    run_json.parent.mkdir(parents=True)
    run_json.write_text(json.dumps({"config": {"parameters": params}}))
    out = bench("patience_probe.py", "--methods", "mtl", "--figures", str(tmp_path / "figures"),
                "--out", str(tmp_path / "probe"), "--episodes", "3", env={"MTL_META_DATA": str(omniglot_root)})
    rows = {(r[0], r[1]): r for r in table_rows(out)[1:]}
    assert set(rows) == {("mtl", "profile"), ("mtl", "patient")}
    assert [int(rows["mtl", s][2]) for s in ("profile", "patient")] == [1, 2]   # epochs: the patient one trains twice as long
    assert all(0 <= float(r[6].split(" ± ")[0]) <= 100 for r in rows.values())
    written = (tmp_path / "probe" / "patience-probe.md").read_text()
    assert all("| " + " | ".join(r) + " |" in written for r in rows.values())


def test_bench_loop_cpu_path_prints_loop_step_and_projection():
    out = bench("bench_loop.py", "--device", "cpu", "--backbone", "conv4", "--size", "28", "--channels", "1",
                "--classes", "6", "--per-class", "21", "--cases", "mtl", "mtl-mb4-1fwd", "--precisions", "fp32",
                "--updates", "1", "--warmup", "0", "--val-episodes", "1")
    rows = table_rows(out)
    whats = {(r[0], r[2]) for r in rows if len(r) == 6}
    assert {("mtl", "step alone"), ("mtl", "loop"), ("mtl", "loop + prefetch"), ("mtl-mb4-1fwd", "loop")} <= whats
    proj = [r for r in rows if r[0].startswith("MTL mini-ImageNet 5w5s")]
    assert len(proj) == 1 and float(proj[0][6]) > 0 and proj[0][7] == "3.7"


@pytest.mark.slow   # a papermill kernel start, a short training run and its tests: tens of seconds
def test_bench_breakdown_reports_every_part(omniglot_root):
    out = bench("bench_breakdown.py", "--methods", "mtl", "--updates", "2", "--val-episodes", "2",
                "--test-episodes", "2", "--data-root", str(omniglot_root))
    rows = [r for r in table_rows(out) if r[0] == "mtl"]
    assert len(rows) == 2    # this run, and the projection onto the committed final run
    shares = [float(x) for x in rows[0][2:10]]
    assert abs(sum(shares) - 100) < 0.5 and all(s >= 0 for s in shares)
    assert float(rows[1][10]) > 0    # the committed run's updates


def test_bench_breakdown_bad_input_is_one_line():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_breakdown.py"), "--updates", "1"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--updates" in r.stderr
