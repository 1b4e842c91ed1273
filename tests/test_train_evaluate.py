"""Training and evaluation end to end on the real Omniglot minimal sets, through the CLI and the API."""
import json

import pytest
import torch

SMALL = ["--dataset", "omniglot-minimal", "--backbone", "conv4", "--ways", "5", "--shots", "1",
         "--episodes-per-epoch", "10", "--val-episodes", "10", "--no-progress"]


def test_train_then_evaluate_via_cli(run_cli, omniglot_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--method", "mtl", *SMALL, "--max-steps", "20", "--out", str(out),
                "--data-root", str(omniglot_root))
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["epochs"] == 2 and len(summary["history"]) == 2
    assert summary["metadata"]["n_classes"] > 5 and summary["metadata"]["method"] == "mtl"
    ev = run_cli("evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--ways", "5", "--shots", "1",
                 "--episodes", "20", "--adapt", "centroid", "--json", "--no-progress", "--data-root", str(omniglot_root))
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert 0 <= res["mean"] <= 1 and res["ci95"] > 0 and res["episodes"] == 20

    # the same command with a larger budget resumes from the checkpoint instead of starting over
    r2 = run_cli("train", "--method", "mtl", *SMALL, "--max-steps", "30", "--out", str(out),
                 "--data-root", str(omniglot_root))
    assert r2.returncode == 0, r2.stderr
    summary2 = json.loads((out / "summary.json").read_text())
    assert summary2["steps"] == 30 and summary2["history"][:2] == summary["history"]


@pytest.mark.parametrize("args, message", [
    (["--ways", "0"], "ways must be at least 1, got 0"),
    (["--method", "nope"], "argument --method: invalid choice: 'nope'"),
    (["--head-lr", "inf"], "head_lr must be a finite positive number, got inf"),
    (["--backbone", "vgg"], "vgg"),
    (["--dataset", "imagenet-21k"], "imagenet-21k"),
])
def test_bad_train_arguments_are_one_line(run_cli, omniglot_root, tmp_path, args, message):
    r = run_cli("train", *SMALL, "--max-steps", "1", *args, "--out", str(tmp_path / "o"),
                "--data-root", str(omniglot_root))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_corrupt_checkpoint_is_one_line(run_cli, tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    r = run_cli("evaluate", "--checkpoint", str(bad), "--episodes", "5", "--no-progress")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "is corrupt or unsafe to load" in r.stderr
    missing = run_cli("evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--no-progress")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_mtl_learns_on_omniglot_minimal(omniglot_root, tmp_path):
    """MTL with Conv-4, a few hundred updates on the training alphabets: 5-way 1-shot accuracy on
    held-out alphabets far above chance (20%)."""
    from mtl_meta import api
    torch.set_num_threads(2)
    summary = api.train("mtl", "omniglot-minimal", "conv4", out_dir=tmp_path, data_root=omniglot_root,
                        ways=5, shots=1, queries=5, episodes_per_epoch=200, epochs=2, val_episodes=50, seed=0)
    res = api.evaluate(tmp_path / "checkpoint.pt", ways=5, shots=1, episodes=200, adapt="logreg-torch",
                       data_root=omniglot_root, seed=1)
    print(f"MTL conv4 omniglot-minimal 5-way 1-shot: {100 * res.mean:.1f} +- {100 * res.ci95:.1f} % "
          f"after {summary['steps']} updates, {summary['train_seconds']:.1f} s of training")
    assert res.mean > 0.5, res.mean
    assert summary["history"][-1]["train_loss"] < summary["history"][0]["train_loss"]


def test_per_task_head_variant_trains_on_its_pool(run_cli, omniglot_root, tmp_path):
    r = run_cli("train", "--method", "mtl-tasks", *SMALL, "--max-steps", "3", "--out", str(tmp_path / "pool"),
                "--data-root", str(omniglot_root))
    assert r.returncode == 0, r.stderr
    ckpt = torch.load(tmp_path / "pool" / "checkpoint.pt", weights_only=True)
    assert ckpt["algorithm"]["weight"].shape[:2] == (100, 5)   # one 5-way head per pool task



def test_records_and_keywords_are_the_same_call(omniglot_root, tmp_path):
    "A record's fields given by name (the API's keywords before the records) and the record itself train and test alike."
    from mtl_meta import api
    tiny = dict(ways=5, shots=1, max_steps=3, episodes_per_epoch=3, val_episodes=4, seed=4)
    by_name = api.train("protonet", out_dir=tmp_path / "a", data_root=omniglot_root, train_rotations=True,
                        algorithm_options={"normalize_by_dim": True}, progress=False, **tiny)
    by_record = api.train("protonet", out_dir=tmp_path / "b", **tiny,
                          data=api.DataOptions(data_root=omniglot_root, train_rotations=True),
                          model=api.ModelOptions(algorithm_options={"normalize_by_dim": True}),
                          run=api.RunOptions(progress=False))
    same = lambda s: {k: v for k, v in s.items() if k not in ("timings", "train_seconds", "history")}
    assert same(by_name) == same(by_record) and by_name["metadata"]["train_rotations"] is True
    assert [h["val_acc"] for h in by_name["history"]] == [h["val_acc"] for h in by_record["history"]]
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["algorithm"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["algorithm"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    res = api.evaluate(tmp_path / "a", episodes=4, queries=3, adapt="centroid", seed=2, data_root=omniglot_root)
    again = api.evaluate(tmp_path / "a", config=api.EvalConfig(episodes=4, queries=3, adapt="centroid", seed=2),
                         data_root=omniglot_root)
    assert (res.mean, res.ci95, res.ways, res.shots) == (again.mean, again.ci95, again.ways, again.shots) == (
        res.mean, res.ci95, 5, 1)
    with pytest.raises(api.MtlMetaError, match="data must be a DataOptions or None"):
        api.train("protonet", "omniglot-minimal", "conv4", tmp_path / "c", str(omniglot_root), **tiny)
