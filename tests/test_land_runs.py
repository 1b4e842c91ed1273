"""tools/land_runs.py: a slice's complete runs and finished seeds land in another reproduction folder, nothing else."""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("land_runs", Path(__file__).parent.parent / "tools" / "land_runs.py")
lr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lr)
IDENTITY = {"method": "mtl", "train_config": {"lr": 0.003}}


def _write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _lock(folder: Path, pid: int) -> None:
    _write(folder / ".mtl-meta.lock", json.dumps({"pid": pid, "host": socket.gethostname(), "started": "now"}))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _seed(run: Path, n: int, finished: bool, identity: dict = IDENTITY) -> None:
    "A seed as training leaves it: checkpoint and history as it goes, summary then seed.json when it ends."
    _write(run / f"seed{n}" / "checkpoint.pt", "weights")
    _write(run / f"seed{n}" / "history.csv", f"epoch\n{n}\n")
    if finished:
        _write(run / f"seed{n}" / "summary.json", json.dumps({"seed": n}))
        _write(run / f"seed{n}" / "seed.json", json.dumps({"identity": {**identity, "seed": n}, "record": {}}))
    else:
        _lock(run / f"seed{n}", os.getpid())   # a live process trains it


def _complete(run: Path, config_hash: str = "a" * 16) -> None:
    _write(run / "results.json", json.dumps({"per_seed": []}))
    _write(run / "run.json", json.dumps({"status": "ok", "config_hash": config_hash}))


def _slice(root: Path) -> Path:
    "A slice's folder: one complete run, one run with seed 0 finished and seed 1 going, one run just started."
    runs = root / "runs"
    _seed(runs / "done", 0, finished=True)
    _write(runs / "done" / "done.ipynb", "{}")
    _write(runs / "done" / "results.json.tmp", "half")
    _complete(runs / "done")
    _seed(runs / "going", 0, finished=True)
    _lock(runs / "going" / "seed0", _dead_pid())   # a stale lock: its process has ended
    _seed(runs / "going", 1, finished=False)
    _write(runs / "going" / "attempts.json", "{}")
    _write(runs / "started" / "run.json", json.dumps({"status": "running"}))
    _write(runs / "started" / "results.json", "{trunc")
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != ".mtl-meta.lock"}


def test_complete_runs_land_whole_and_finished_seeds_alone_without_checkpoints_or_locks(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    assert lr.land(src, dst) == ["complete done", "seed going/seed0"]
    assert _files(dst) == {"runs/done/run.json", "runs/done/results.json", "runs/done/done.ipynb",
                           "runs/done/seed0/history.csv", "runs/done/seed0/seed.json", "runs/done/seed0/summary.json",
                           "runs/going/seed0/seed.json", "runs/going/seed0/history.csv",
                           "runs/going/seed0/summary.json"}
    assert not list(dst.rglob("*.pt")) and not list((dst / "runs").rglob(".mtl-meta.lock"))
    assert (src / "runs" / "going" / "seed1" / "checkpoint.pt").exists()   # nothing taken from the source
    assert lr.land(src, dst) == []                                          # repeated: nothing new


def test_a_run_that_completes_later_replaces_its_landed_seeds_and_a_complete_one_is_kept(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    lr.land(src, dst)
    going = src / "runs" / "going"
    (going / "seed1" / ".mtl-meta.lock").unlink()
    _seed(going, 1, finished=True)
    _complete(going)
    _write(src / "runs" / "done" / "done.ipynb", "changed")
    assert lr.land(src, dst) == ["complete going"]
    assert (dst / "runs" / "going" / "seed1" / "seed.json").exists() and (dst / "runs" / "going" / "run.json").exists()
    assert (dst / "runs" / "done" / "done.ipynb").read_text() == "{}"   # a complete run is kept as it was
    assert not (dst / ".landing").exists()


def test_a_seed_or_run_being_trained_again_is_not_landed(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    time.sleep(0.01)
    _write(src / "runs" / "going" / "seed0" / "history.csv", "epoch\n0\n1\n")   # retraining: seed.json is older
    _write(src / "runs" / "done" / "results.json", json.dumps({"per_seed": [1]}))   # a forced rerun wrote it
    assert lr.land(src, dst) == ["seed done/seed0"]   # the rerun's run is not whole; its seed not yet retrained is
    assert not (dst / "runs" / "done" / "run.json").exists() and not (dst / "runs" / "going").exists()


@pytest.mark.parametrize("what", ["config_hash", "seed identity"])
def test_runs_made_with_other_settings_stop_the_landing_before_anything_is_copied(tmp_path, what):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    if what == "config_hash":
        _seed(dst / "runs" / "done", 0, finished=True)
        _complete(dst / "runs" / "done", config_hash="b" * 16)
    else:   # the destination's seed of the same run trained with another learning rate
        _seed(dst / "runs" / "going", 0, finished=True, identity={**IDENTITY, "train_config": {"lr": 0.01}})
    before = _files(dst)
    with pytest.raises(lr.Conflict, match="other settings"):
        lr.land(src, dst)
    assert _files(dst) == before
    r = subprocess.run([sys.executable, str(Path(lr.__file__)), str(src), str(dst)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "nothing landed" in r.stderr


def test_the_destination_is_not_landed_in_while_another_process_writes_it(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    dst.mkdir()
    code = ("import sys, time; from mtl_meta.core import OutputLock\n"
            "with OutputLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(dst)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lr.MtlMetaError, match="the destination"):
            lr.land(src, dst)
        assert not (dst / "runs").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("case", ["no runs folder", "same folder"])
def test_a_wrong_folder_is_one_line_that_says_what_to_give(tmp_path, case):
    src = _slice(tmp_path / "slice") if case == "same folder" else tmp_path / "empty"
    with pytest.raises(SystemExit) as e:
        lr.land(src, src if case == "same folder" else tmp_path / "main")
    msg = str(e.value)
    assert msg.startswith("land_runs.py: ") and "\n" not in msg and "give the slice's" in msg
