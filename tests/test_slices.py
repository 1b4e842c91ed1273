"""Reproductions in time-limited slices (issue 37): a limit that stops cleanly and resumes, finished seeds that
are never trained again, a frozen profile that trains nothing, and a missing data root that names its fix."""
import json
import shutil

import pytest

from mtl_meta.core import MtlMetaError

TRIAL, FINAL = "tune-omniglot-minimal-5w1s-mtl-t0", "omniglot-minimal-5w1s-mtl"
SMALL = ["--set", "epochs=2", "episodes_per_epoch=4", "val_episodes=4", "test_episodes=4", "test_queries=2"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def straight(omniglot_root, tmp_path_factory):
    "The trial and final run straight through, once for all workers (`cli_once`): tests copy the folder to change it."
    from conftest import cli_once
    env = {"MTL_META_CACHE": str(tmp_path_factory.getbasetemp() / "cache")}
    done, out = cli_once(tmp_path_factory, "slices-straight", "reproduce", "--profile", "smoke", "--out", "{out}",
                         "--no-progress", "--data-root", str(omniglot_root), "--only", TRIAL, FINAL, *SMALL, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _smoke(run_cli, out, root, *extra):
    return run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--data-root", str(root),
                   "--only", TRIAL, FINAL, *SMALL, *extra)


def test_a_time_limit_stops_a_run_cleanly_and_the_same_command_resumes_it(run_cli, omniglot_root, straight, tmp_path):
    out = tmp_path / "S"
    stopped = _smoke(run_cli, out, omniglot_root, "--time-limit", "2s")   # no estimate yet: the trial starts, and stops
    assert stopped.returncode == 0, stopped.stderr
    last = stopped.stdout.strip().splitlines()[-1]
    assert last.startswith("time limit: 2 runs pending") and f"{TRIAL} stopped at the limit" in last
    assert "rerun the same command to resume" in last and len(last.splitlines()) == 1
    attempts = json.loads((out / "runs" / TRIAL / "attempts.json").read_text())["attempts"]
    assert len(attempts) == 1 and attempts[0]["ended"] == "time limit" and attempts[0]["seconds"] >= 2
    assert not (out / "runs" / TRIAL / "run.json").exists() and not (out / "runs" / FINAL).exists()
    resumed = _smoke(run_cli, out, omniglot_root, "--time-limit", "10m")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 of 2 runs complete" in resumed.stdout and "pending" not in resumed.stdout
    record = json.loads((out / "runs" / TRIAL / "run.json").read_text())
    assert record["earlier_attempts"] == attempts                       # the stopped attempt's seconds are counted
    assert record["seconds_all_attempts"] == pytest.approx(record["seconds"] + attempts[0]["seconds"], abs=0.02)
    assert not (out / "runs" / TRIAL / "attempts.json").exists()
    # the same runs straight through give the same numbers: the stop lost nothing
    clean = shutil.copytree(straight, tmp_path / "C")
    for name in (TRIAL, FINAL):
        a, b = (json.loads((o / "runs" / name / "results.json").read_text()) for o in (out, clean))
        assert a["best_val_acc"] == b["best_val_acc"] and a.get("test_acc") == b.get("test_acc")
    # a run expected (from the records of its method beside it) to take longer than the time left does not start
    shutil.rmtree(clean / "runs" / TRIAL)
    again = _smoke(run_cli, clean, omniglot_root, "--time-limit", "1s")
    assert again.returncode == 0 and "expected to need" in again.stdout, again.stdout
    assert not (clean / "runs" / TRIAL).exists()


def test_a_finished_seed_is_kept_without_its_checkpoint(run_cli, omniglot_root, straight, tmp_path):
    """A clone holds a final run's finished seeds (seedN/seed.json) but no checkpoints: the run completes from
    them without training, with the same numbers, every test episode's accuracy included."""
    out = shutil.copytree(straight, tmp_path / "S")
    folder = out / "runs" / FINAL
    before = json.loads((folder / "results.json").read_text())
    seed = json.loads((folder / "seed0" / "seed.json").read_text())
    accs = seed["record"]["tests"][0]["episode_accs"]
    assert len(accs) == 4 and sum(accs) / 4 == pytest.approx(seed["record"]["test_acc"])
    for p in [*folder.rglob("*.pt"), folder / "results.json", folder / "run.json"]:
        p.unlink()
    r = _smoke(run_cli, out, omniglot_root)
    assert r.returncode == 0, r.stderr
    assert "seed 0: finished earlier, record kept" in (folder / f"{FINAL}.log").read_text() + \
        json.dumps(json.loads((folder / f"{FINAL}.ipynb").read_text())["cells"])
    assert not list(folder.rglob("*.pt"))                          # nothing was trained again
    assert json.loads((folder / "results.json").read_text())["test_acc"] == before["test_acc"]
    # a seed record made with other settings does not count: it is trained again
    seed["identity"]["train_config"]["lr"] = 123.0
    (folder / "seed0" / "seed.json").write_text(json.dumps(seed))
    (folder / "results.json").unlink(); (folder / "run.json").unlink()
    assert _smoke(run_cli, out, omniglot_root).returncode == 0
    assert list(folder.rglob("*.pt")) and json.loads((folder / "seed0" / "seed.json").read_text())["identity"] != seed["identity"]


def test_missing_data_names_the_command_that_fetches_it_and_report_only_needs_none(run_cli, tmp_path):
    missing = tmp_path / "nowhere"
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "S"), "--no-progress",
                "--only", TRIAL, env={"MTL_META_DATA": str(missing)})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"mtl-meta data download --dataset omniglot-minimal --data-root {missing}" in r.stderr
    assert "--report-only" in r.stderr
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "S"), "--no-progress", "--report-only",
                "--only", TRIAL, env={"MTL_META_DATA": str(missing)})
    assert r.returncode == 0 and "report only: 1 runs pending" in r.stdout, r.stderr


def test_a_frozen_profile_trains_nothing_and_says_where_its_records_are(tmp_path):
    from mtl_meta.profiles import FROZEN_PROFILES
    from mtl_meta.reproduce import reproduce
    from mtl_meta.sweep import Sweep
    with pytest.raises(MtlMetaError, match="profile 'cpu-2026-11' is frozen .* pass --out figures/cpu-2026-11"):
        reproduce("cpu-2026-11", out=tmp_path / "empty")
    with pytest.raises(MtlMetaError, match="frozen: it trains nothing, so --force and --set do not apply"):
        reproduce("cpu-2026-11", out=tmp_path / "empty", force=True)
    with pytest.raises(MtlMetaError, match="time limit must be 0"):
        reproduce("smoke", out=tmp_path / "x", only=["environment"], sweep=Sweep(time_limit=-1))
    assert FROZEN_PROFILES["cpu-2026-11"]["recorded_as"] == "cpu"


@pytest.mark.parametrize("text, seconds", [("2h", 7200), ("90m", 5400), ("1.5h", 5400), ("30s", 30), ("45", 45), ("0", 0)])
def test_durations(text, seconds):
    from mtl_meta.cli import parse_duration
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["two hours", "-1h", "inf", "h", ""])
def test_bad_durations_are_one_line_errors(run_cli, bad):
    r = run_cli("reproduce", "--profile", "smoke", f"--time-limit={bad}")
    assert r.returncode == 2 and "expected a duration" in r.stderr and "Traceback" not in r.stderr


def test_expected_seconds_come_from_the_methods_own_records(tmp_path):
    from mtl_meta.core import atomic_write_json
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import expected_seconds
    runs = {r.name: r for r in get_profile("cpu")}
    trial, final = runs["tune-omniglot-minimal-5w1s-mtl-t0"], runs["omniglot-minimal-5w1s-mtl"]
    assert expected_seconds(tmp_path, trial) is None                      # nothing recorded: no estimate
    folder = tmp_path / "runs" / "tune-omniglot-minimal-5w1s-mtl-t1"
    hist = [{"epoch": e} for e in range(8)]
    atomic_write_json(folder / "results.json", {"experiment": "tuning", "method": "mtl", "ways": 5, "shots": 1,
                                                "per_seed": [{"seed": 0, "history": hist}]})
    atomic_write_json(folder / "run.json", {"status": "ok", "seconds": 120.0})
    assert expected_seconds(tmp_path, trial) == 120.0                     # the same kind and setting: per seed
    # a final run of 5 seeds, none done: the method's 15 s per epoch times the median epochs of that kind (the cap
    # without any final run recorded), per seed
    assert expected_seconds(tmp_path, final) == 5 * 30 * 15.0
    (tmp_path / "runs" / final.name / "seed0").mkdir(parents=True)
    (tmp_path / "runs" / final.name / "seed0" / "seed.json").write_text("{}")
    assert expected_seconds(tmp_path, final) == 4 * 30 * 15.0             # a finished seed needs no time
    assert expected_seconds(tmp_path, final, seeds=1) == 30 * 15.0         # until its next seed lands: what a slice asks
    # a method with no record yet: the median per seed of the other methods' runs of the same kind and setting
    other = runs["tune-omniglot-minimal-5w1s-protonet-t0"]
    assert expected_seconds(tmp_path, other) == 120.0
    assert expected_seconds(tmp_path, runs["tune-omniglot-minimal-5w5s-protonet-t0"]) is None   # another setting


def test_one_contended_run_does_not_inflate_the_estimate(tmp_path):
    """Three trials of a method, one of which shared the cores with other work (4x as long): the estimate is the
    median, so a slice still starts the method's next run when the quiet runs say it fits."""
    from mtl_meta.core import atomic_write_json
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import expected_seconds
    runs = {r.name: r for r in get_profile("cpu")}
    hist = [{"epoch": e} for e in range(8)]
    for t, seconds in [(0, 500.0), (1, 2000.0), (2, 560.0)]:
        folder = tmp_path / "runs" / f"tune-omniglot-minimal-5w1s-maml-t{t}"
        atomic_write_json(folder / "results.json", {"experiment": "tuning", "method": "maml", "ways": 5,
                                                    "shots": 1, "per_seed": [{"seed": 0, "history": hist}]})
        atomic_write_json(folder / "run.json", {"status": "ok", "seconds": seconds})
    assert expected_seconds(tmp_path, runs["tune-omniglot-minimal-5w1s-maml-t3"]) == 560.0   # not the mean, 1020
    # a final run (no final recorded: the epoch cap, 30) from the median seconds per epoch, 560 / 8
    final = runs["omniglot-minimal-5w1s-maml"]
    assert expected_seconds(tmp_path, final, seeds=1) == 30 * 560.0 / 8


def test_a_grid_still_being_tried_has_no_edges_yet(tmp_path):
    """tuning.md judges a key's edges only once its own grid trials are all in: with 3 of MetaOptNet-RR's 5 five-shot
    trials done (committed records), its best so far (the highest lr tried yet) is not called an edge; MTL's complete
    grid, won on its lowest lr, is."""
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import select_trials
    from mtl_meta.runs import is_complete
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    trials = [r for r in get_profile("cpu") if r.tunes in ("omniglot-minimal-5w5s/metaoptnet-rr",
                                                           "omniglot-minimal-5w5s/mtl")]
    done = [r for r in trials if is_complete(repo / "figures", r, "cpu")]
    rr_done = sum(r.tunes.endswith("metaoptnet-rr") for r in done)
    if not 0 < rr_done < 5 or sum(r.tunes.endswith("mtl") for r in done) != 5:
        pytest.skip("needs the committed records of a partly tried grid (MetaOptNet-RR 5-shot) and a whole one (MTL)")
    for r in done:
        shutil.copytree(repo / "figures" / "runs" / r.name, tmp_path / "runs" / r.name)
    select_trials(tmp_path, trials, "cpu")
    text = (tmp_path / "tuning.md").read_text()
    assert f"omniglot-minimal-5w5s/metaoptnet-rr: {rr_done} of 5 grid trials done; its edges are judged" in text
    assert "metaoptnet-rr: lr" not in text                            # no edge claimed for the unfinished grid
    low = min(r.parameters["trial"]["lr"] for r in trials if r.tunes.endswith("mtl"))
    best = json.loads((tmp_path / "tuning.json").read_text())["selected"]["omniglot-minimal-5w5s/mtl"]["trial"]["lr"]
    assert (f"omniglot-minimal-5w5s/mtl: lr = {low} is the lowest value tried" in text) == (best == low)
    assert "Every selected value lies inside its grid" not in text
