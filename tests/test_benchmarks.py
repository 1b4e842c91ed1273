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
    out = bench("bench_mtl_step.py", "--reps", "1", "--backbones", "conv4", "--amp", "bf16", "--channels-last",
                "--warmup", "0", "--min-block-s", "0")   # one step a round: the two rows are what is checked
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


# ---- the timing harness (benchmarks/harness.py) ------------------------------------------------------------------

@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import harness
    return harness


class FakeClock:
    "A virtual clock: cases advance it by the time they 'take', so the tests are instant and exact."
    def __init__(self):
        self.t = 0.0
    def now(self):
        return self.t
    def sleep(self, s):
        self.t += s


def fake_case(clock, per_unit, noise=None, slow_first=0, log=None, name=""):
    "A case whose unit takes `per_unit` virtual seconds, times noise() when given; its first calls 100x slower."
    def run(n):
        if log is not None:
            log.append(name)
        k = 100.0 if run.calls < slow_first else 1.0
        run.calls += 1
        clock.sleep(n * per_unit * k * (noise() if noise else 1.0))
    run.calls = 0
    return run


def test_t_quantile_matches_known_values(harness):
    for df, q in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452), (120, 1.9799)):
        assert harness.t_quantile(0.95, df) == pytest.approx(q, abs=1e-4)
    assert harness.t_quantile(0.99, 5) == pytest.approx(4.0321, abs=1e-4)
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 7, 16, 51, 200):
        assert harness.t_quantile(0.95, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1e-9)


def test_rounds_interleave_and_rotate(harness):
    clock, log = FakeClock(), []
    cases = {c: fake_case(clock, 0.01, log=log, name=c) for c in "ABC"}
    res = harness.compare(cases, "A", warmup_rounds=1, units=1, min_rounds=4, max_rounds=4, budget_s=1e9,
                          clock=clock.now, sleep=clock.sleep)
    assert log == [c for _, c in res.order]
    rounds = [[c for r, c in res.order if r == k] for k in sorted({r for r, _ in res.order})]
    assert all(sorted(r) == ["A", "B", "C"] for r in rounds)          # each case once per round, never twice in a row
    assert rounds == [["A", "B", "C"], ["B", "C", "A"], ["C", "A", "B"], ["A", "B", "C"], ["B", "C", "A"]]
    assert [r for r, _ in res.order[:3]] == [-1, -1, -1]               # the warm-up round comes first
    log2 = []
    fixed = harness.compare({c: fake_case(clock, 0.01, log=log2, name=c) for c in "AB"}, "A",
                            warmup_rounds=0, units=1, min_rounds=3, max_rounds=3, rotate=False,
                            clock=clock.now, sleep=clock.sleep)
    assert log2 == ["A", "B"] * 3 and fixed.rounds == 3


def test_warmup_is_not_measured_and_calibrates_the_block(harness):
    clock = FakeClock()
    cases = {"A": fake_case(clock, 0.01, slow_first=2), "B": fake_case(clock, 0.02, slow_first=2)}
    res = harness.compare(cases, "A", warmup_rounds=3, min_block_s=0.2, min_rounds=5, max_rounds=5,
                          clock=clock.now, sleep=clock.sleep)
    assert res.warmup["A"][:2] == [pytest.approx(1.0)] * 2            # the slow first calls: warm-up only
    assert res.seconds["A"] == [pytest.approx(0.01)] * 5 and res.seconds["B"] == [pytest.approx(0.02)] * 5
    assert res.units == {"A": 20, "B": 10}                            # 0.2 s blocks from the last warm-up round
    assert res.ratio("B").estimate == pytest.approx(2.0)


def test_interval_of_a_known_ratio_covers_it(harness):
    "Round-wide load swings hit both cases of a round (pairing cancels them); the 95% interval covers the true 2.0."
    import random
    covered, tight = 0, 0
    for seed in range(200):
        rng, clock = random.Random(seed), FakeClock()
        load = {"f": 1.0}
        def new_round_noise():
            return load["f"] * rng.lognormvariate(0, 0.05)
        a = fake_case(clock, 0.010, noise=new_round_noise)
        def swing_then_a(n, a=a):
            load["f"] = rng.uniform(0.7, 1.6)   # the machine's load changes between rounds (A runs first in each)
            a(n)
        b = fake_case(clock, 0.020, noise=new_round_noise)
        res = harness.compare({"A": swing_then_a, "B": b}, "A", warmup_rounds=1, units=5, min_rounds=8,
                              max_rounds=8, rotate=False, clock=clock.now, sleep=clock.sleep)
        r = res.ratio("B")
        covered += r.lo <= 2.0 <= r.hi
        tight += res.time("B").half_width > r.half_width
    assert 0.90 <= covered / 200 <= 0.99
    assert tight > 150    # pairing: the ratio is known better than either time


def test_faster_only_when_the_interval_excludes_one(harness):
    I = harness.Interval
    assert harness.verdict(I(0.9, 0.85, 0.95, 10)) == "faster"
    assert harness.verdict(I(0.9, 0.80, 1.01, 10)) == "no difference shown"
    assert harness.verdict(I(1.2, 1.05, 1.30, 10)) == "slower"
    assert harness.verdict(I(0.5, None, None, 1)).startswith("not shown")
    assert not I(0.9, 0.80, 1.01, 10).excludes_one() and I(0.9, 0.85, 0.95, 10).excludes_one()
    import random
    rng, clock = random.Random(1), FakeClock()
    noisy = lambda: rng.lognormvariate(0, 0.3)
    cases = {"ref": fake_case(clock, 0.01, noise=noisy), "same": fake_case(clock, 0.0095, noise=noisy),
             "half": fake_case(clock, 0.005, noise=noisy)}
    res = harness.compare(cases, "ref", warmup_rounds=1, units=1, min_rounds=6, max_rounds=6,
                          clock=clock.now, sleep=clock.sleep)
    assert harness.verdict(res.ratio("same")) == "no difference shown"    # 5% faster, but not shown by 6 noisy rounds
    assert harness.verdict(res.ratio("half")) == "faster"
    rows = harness.table(res, speedup=True)
    assert len(rows) == 5 and "reference" in rows[2] and "faster" in rows[4]


def test_rounds_are_added_until_the_target_or_the_budget(harness):
    import random
    rng, clock = random.Random(0), FakeClock()
    quiet = harness.compare({"A": fake_case(clock, 0.01, noise=lambda: rng.lognormvariate(0, 0.01)),
                             "B": fake_case(clock, 0.02, noise=lambda: rng.lognormvariate(0, 0.01))}, "A",
                            warmup_rounds=1, units=10, min_rounds=5, budget_s=1e6, clock=clock.now, sleep=clock.sleep)
    assert quiet.target_met and quiet.stopped == "target met" and quiet.rounds == 5
    assert quiet.ratio("B").within(0.05)
    clock = FakeClock()
    loud = harness.compare({"A": fake_case(clock, 0.01, noise=lambda: rng.lognormvariate(0, 0.5)),
                            "B": fake_case(clock, 0.02, noise=lambda: rng.lognormvariate(0, 0.5))}, "A",
                           warmup_rounds=1, units=10, min_rounds=5, budget_s=3.0, clock=clock.now, sleep=clock.sleep)
    assert not loud.target_met and loud.stopped == "budget" and loud.elapsed_s <= 3.0 + 0.5
    assert "NOT met" in loud.summary()


def test_twice_reports_the_largest_ratio_difference(harness):
    clock = FakeClock()
    def run(k):
        return harness.compare({"A": fake_case(clock, 0.01), "B": fake_case(clock, 0.02 * k)}, "A", warmup_rounds=0,
                               units=1, min_rounds=2, max_rounds=2, clock=clock.now, sleep=clock.sleep)
    rows, worst = harness.twice_table(run(1.0), run(1.1))
    assert worst["case"] == "B" and worst["abs"] == pytest.approx(0.2) and worst["rel"] == pytest.approx(0.1)
    assert len(rows) == 3 and "+0.200" in rows[2]


def test_real_clock_sleeps(harness):
    import time
    cases = {"short": lambda n: time.sleep(0.01 * n), "long": lambda n: time.sleep(0.02 * n)}
    res = harness.compare(cases, "short", warmup_rounds=1, min_block_s=0.03, min_rounds=3, max_rounds=3)
    assert res.ratio("long").estimate == pytest.approx(2.0, rel=0.2)
    assert harness.verdict(res.ratio("long")) in ("slower", "no difference shown")


@pytest.mark.parametrize("script", ["bench_update_time.py", "bench_configs.py", "bench_breakdown.py", "bench_adapt.py",
                                    "bench_episodes.py", "bench_distributed.py"])
def test_benchmarks_without_data_say_so_in_one_line(script, tmp_path):
    out = ["--out", str(tmp_path / "report.md" if script == "bench_breakdown.py" else tmp_path)] \
        if script in ("bench_update_time.py", "bench_configs.py", "bench_breakdown.py") else []
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *out],
                       capture_output=True, text=True, timeout=300, cwd=REPO,
                       env={**os.environ, "MTL_META_DATA": str(tmp_path / "nonexistent")})
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "no data" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow   # a few real updates of two methods under a budget of seconds
def test_bench_update_time_writes_the_table(omniglot_root, tmp_path):
    out = bench("bench_update_time.py", "--methods", "mtl", "protonet", "--settings", "5w1s", "--budget-min", "0.05",
                "--min-rounds", "2", "--warmup-rounds", "1", "--min-block-s", "0", "--widths", "64", "16",
                "--out", str(tmp_path), env={"MTL_META_DATA": str(omniglot_root)})
    import csv
    rows = list(csv.DictReader((tmp_path / "update-time.csv").open()))
    assert [(r["setting"], r["method"], r["width"]) for r in rows] == [("5w1s", "mtl", "64"), ("5w1s", "protonet", "64"),
                                                                      ("5w1s", "mtl", "16"), ("5w1s", "protonet", "16")]
    assert rows[2]["verdict"] == "reference"   # each width against MTL at the same width
    # a page of its own in the site's navigation: titled by its widths, not as the profile's table
    assert (tmp_path / "update-time.md").read_text().startswith("# Per-update time at Conv-4 widths 16, 64 ")
    from mtl_meta.report import update_times
    assert set(update_times(tmp_path / "update-time.csv")) == {("mtl", "5w1s"), ("protonet", "5w1s")}
    assert all(float(r["ms_per_update"]) > 0 and float(r["ms_lo95"]) <= float(r["ms_per_update"]) <= float(r["ms_hi95"])
               for r in rows)
    assert rows[0]["verdict"] == "reference" and float(rows[1]["ratio_lo95"]) <= float(rows[1]["ratio"])
    assert rows[0]["torch_threads"] and rows[0]["cpu_model"] and rows[0]["onednn"] in ("True", "False")
    md = (tmp_path / "update-time.md").read_text()
    assert "5w1s protonet" in md and "5w1s protonet w16" in md and "Machine:" in md and md in out
    assert json.loads((tmp_path / "update-time.json").read_text())["runs"][0]["rounds"] >= 1


@pytest.mark.slow   # three worker processes, a few updates each, measured twice
def test_bench_configs_twice_on_a_tight_budget(omniglot_root, tmp_path):
    bench("bench_configs.py", "--methods", "mtl", "--only", "2 threads, channels-last", "--budget-min", "0.05",
          "--min-rounds", "2", "--warmup-rounds", "1", "--min-block-s", "0", "--check-updates", "1",
          "--val-episodes", "2", "--twice", "--out", str(tmp_path), env={"MTL_META_DATA": str(omniglot_root)})
    import csv
    rows = list(csv.DictReader((tmp_path / "configs.csv").open()))
    assert [(r["run"], r["configuration"]) for r in rows] == [
        ("1", "2 threads (reference)"), ("1", "2 threads, channels-last"),
        ("2", "2 threads (reference)"), ("2", "2 threads, channels-last")]
    assert rows[0]["bit_identical"] == "yes" and rows[1]["bit_identical"] in ("yes", "no")
    md = (tmp_path / "configs.md").read_text()
    assert "Repeatability" in md and "Largest speed-up difference" in md and "under torch.inference_mode" in md


def test_bench_loader_measures_every_route(tmp_path):
    out = bench("bench_loader.py", "--images", "600", "--classes", "30", "--size", "8", "--episodes", "2",
                "--workers", "1", env={"MTL_META_CACHE": str(tmp_path)})
    rows = table_rows(out)[1:]
    assert [r[0] for r in rows] == ["cached", "cached-warm", "lazy", "dataloader"]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)
