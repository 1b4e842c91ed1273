"""Data-parallel training with torchrun + DistributedDataParallel (gloo, 2 CPU processes) on the real
Omniglot minimal sets: the same parameters as one process with the same global meta-batch, resume
across invocations, and a crashed rank failing the job with one clear line."""
import pytest
import torch

from mtl_meta.train import load_checkpoint

ARGS = ["--dataset", "omniglot-minimal", "--backbone", "conv4", "--ways", "5", "--shots", "1", "--queries", "3",
        "--meta-batch-size", "4", "--episodes-per-epoch", "400", "--val-episodes", "8", "--no-progress",
        "--lr", "0.003"]


def _params(path):
    state = load_checkpoint(path)["algorithm"]
    # batch-norm running statistics are per process (each sees its own episodes); parameters are shared
    return {k: v for k, v in state.items() if not any(s in k for s in ("running_", "num_batches_tracked"))}


@pytest.mark.parametrize("method", ["mtl", "protonet", "maml"])
def test_two_processes_match_one_with_the_same_global_batch(run_cli, omniglot_root, tmp_path, method):
    common = ["train", "--method", method, *ARGS, "--data-root", str(omniglot_root)]
    single = run_cli(*common, "--max-steps", "4", "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    two = tmp_path / "two"
    # the distributed run is interrupted after 2 updates and resumed: resume must work across processes too
    first = run_cli(*common, "--max-steps", "2", "--devices", "2", "--out", str(two), timeout=300)
    assert first.returncode == 0, first.stderr
    halfway = _params(two / "checkpoint.pt")
    second = run_cli(*common, "--max-steps", "4", "--devices", "2", "--out", str(two), timeout=300)
    assert second.returncode == 0, second.stderr
    a, b = _params(tmp_path / "one" / "checkpoint.pt"), _params(two / "checkpoint.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{method} {k}: {m}")
    # and the last two updates moved the parameters (the comparison is not between two untouched states)
    assert any(not torch.allclose(a[k], halfway[k]) for k in a)
    assert load_checkpoint(two / "checkpoint.pt")["state"]["step"] == 4


def test_crashed_rank_fails_the_job_with_one_line(run_cli, omniglot_root, tmp_path):
    r = run_cli("train", "--method", "mtl", *ARGS, "--max-steps", "50", "--devices", "2",
                "--out", str(tmp_path / "crash"), "--data-root", str(omniglot_root),
                env={"MTL_META_FAULT_INJECT": "rank=1,step=2"}, timeout=240)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("mtl-meta: error: distributed training on 2 processes failed"), r.stderr[-2000:]
    assert "Traceback" not in last


def test_meta_batch_must_split_evenly(run_cli, omniglot_root, tmp_path):
    r = run_cli("train", "--method", "mtl", *[a if a != "4" else "3" for a in ARGS], "--max-steps", "1",
                "--devices", "2", "--out", str(tmp_path / "odd"), "--data-root", str(omniglot_root), timeout=240)
    assert r.returncode != 0
    assert "cannot be split evenly over 2 processes" in r.stderr.strip().splitlines()[-1]
