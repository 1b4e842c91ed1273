"""`mtl-meta train --log-dir`: curves TensorBoard's own reader loads, and a history.csv that a killed
run leaves behind and a resumed run continues without duplicates."""
import csv
import json

import pytest


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_log_dir_tensorboard_and_history_csv(run_cli, omniglot_root, tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out, logs = tmp_path / "run", tmp_path / "tb"
    args = ["train", "--epochs", "3", "--episodes-per-epoch", "2", "--val-episodes", "2", "--out", str(out),
            "--log-dir", str(logs), "--no-progress", "--data-root", str(omniglot_root)]
    # killed during the third epoch (after update 5): the first two epochs' rows are on disk
    killed = run_cli(*args, env={"MTL_META_FAULT_INJECT": "rank=0,step=5"})
    assert killed.returncode == 13 and not (out / "summary.json").exists()
    assert [r["epoch"] for r in _rows(out / "history.csv")] == ["0", "1"]
    r = run_cli(*args)   # resumes from the epoch-2 checkpoint
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    history, cfg = summary["history"], summary["config"]
    rows = _rows(out / "history.csv")
    assert [int(x["epoch"]) for x in rows] == [h["epoch"] for h in history] == [0, 1, 2]
    for row, h in zip(rows, history):
        assert int(row["step"]) == h["step"] and float(row["val_acc"]) == pytest.approx(h["val_acc"])
        # the trainer's count: one episode per step, every image of it through the body once (MTL)
        assert int(row["images"]) == h["images"] == h["step"] * cfg["ways"] * (cfg["shots"] + cfg["queries"])
    acc = ea.EventAccumulator(str(logs)).Reload()
    assert {"loss/train", "accuracy/val", "lr", "images_seen", "seconds/wall"} <= set(acc.Tags()["scalars"])
    val = acc.Scalars("accuracy/val")   # both processes' files: the killed one's epochs and the resumed one's
    by_step = {p.step: p.value for p in val}
    assert sorted(by_step) == [h["step"] for h in history]
    assert by_step[history[-1]["step"]] == pytest.approx(history[-1]["val_acc"], rel=1e-6)
    assert [p.value for p in acc.Scalars("lr")][0] == pytest.approx(1e-3)


def test_bad_log_dir_is_one_line(run_cli, omniglot_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("train", "--epochs", "1", "--episodes-per-epoch", "1", "--val-episodes", "1", "--out",
                str(tmp_path / "o"), "--log-dir", str(blocker / "tb"), "--no-progress", "--data-root", str(omniglot_root))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--log-dir" in r.stderr
