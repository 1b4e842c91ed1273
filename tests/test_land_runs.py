"""tools/land_runs.py: a slice's complete runs and finished seeds land in another reproduction folder, nothing else."""
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("land_runs", Path(__file__).parent.parent / "tools" / "land_runs.py")
lr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lr)


def _write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _seed(run: Path, n: int, finished: bool) -> None:
    _write(run / f"seed{n}" / "checkpoint.pt", "weights")
    _write(run / f"seed{n}" / "history.csv", f"epoch\n{n}\n")
    _write(run / f"seed{n}" / ".mtl-meta.lock", "123")
    if finished:
        _write(run / f"seed{n}" / "seed.json", json.dumps({"seed": n}))
        _write(run / f"seed{n}" / "summary.json", json.dumps({"seed": n}))


def _slice(root: Path) -> Path:
    "A slice's folder: one complete run, one run with seed 0 finished and seed 1 going, one run just started."
    runs = root / "runs"
    _write(runs / "done" / "run.json", json.dumps({"status": "ok"}))
    _write(runs / "done" / "results.json", json.dumps({"per_seed": []}))
    _write(runs / "done" / "done.ipynb", "{}")
    _write(runs / "done" / "results.json.tmp", "half")
    _seed(runs / "done", 0, finished=True)
    _seed(runs / "going", 0, finished=True)
    _seed(runs / "going", 1, finished=False)
    _write(runs / "going" / "attempts.json", "{}")
    _write(runs / "started" / "run.json", json.dumps({"status": "running"}))
    _write(runs / "started" / "results.json", "{trunc")
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_complete_runs_land_whole_and_finished_seeds_alone_without_checkpoints_or_locks(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    assert lr.land(src, dst) == ["complete done", "seed going/seed0"]
    assert _files(dst) == {"runs/done/run.json", "runs/done/results.json", "runs/done/done.ipynb",
                           "runs/done/seed0/history.csv", "runs/done/seed0/seed.json", "runs/done/seed0/summary.json",
                           "runs/going/seed0/seed.json", "runs/going/seed0/history.csv",
                           "runs/going/seed0/summary.json"}
    assert (src / "runs" / "going" / "seed1" / "checkpoint.pt").exists()   # nothing taken from the source
    assert lr.land(src, dst) == []                                          # repeated: nothing new


def test_a_run_that_completes_later_replaces_its_landed_seeds_and_a_complete_one_is_kept(tmp_path):
    src, dst = _slice(tmp_path / "slice"), tmp_path / "main"
    lr.land(src, dst)
    going = src / "runs" / "going"
    _seed(going, 1, finished=True)
    _write(going / "run.json", json.dumps({"status": "ok"}))
    _write(going / "results.json", json.dumps({"per_seed": [0, 1]}))
    _write(src / "runs" / "done" / "results.json", json.dumps({"changed": True}))
    assert lr.land(src, dst) == ["complete going"]
    assert (dst / "runs" / "going" / "seed1" / "seed.json").exists() and (dst / "runs" / "going" / "run.json").exists()
    assert json.loads((dst / "runs" / "done" / "results.json").read_text()) == {"per_seed": []}   # kept as it was
    assert not (dst / ".landing").exists()


@pytest.mark.parametrize("case", ["no runs folder", "same folder"])
def test_a_wrong_folder_is_one_line_that_says_what_to_give(tmp_path, case):
    src = _slice(tmp_path / "slice") if case == "same folder" else tmp_path / "empty"
    with pytest.raises(SystemExit) as e:
        lr.land(src, src if case == "same folder" else tmp_path / "main")
    msg = str(e.value)
    assert msg.startswith("land_runs.py: ") and "\n" not in msg and "give the slice's" in msg
