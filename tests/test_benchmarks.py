"""The benchmark scripts run end to end on tiny settings and print a row for everything they measure.

No timing is asserted (speed is what the scripts report, not what tests check); these tests only
catch a script that no longer runs against the package, e.g. a new algorithm it cannot time."""
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
