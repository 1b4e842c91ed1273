"""Reproduction profiles end to end: the smoke profile's tables and figures on the real Omniglot
minimal sets, and the paper profile on tiny fixtures written in the four image benchmarks' real
formats (ResNet-12 shrunk by an override so it runs on a CPU in seconds)."""
import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from fixtures import write_cifar100, write_mini_imagenet, write_tiered_imagenet
from mtl_meta.profiles import PAPER_DATASETS, get_profile


def test_smoke_profile_writes_tables_and_figures(smoke_reproduction):
    r, out = smoke_reproduction
    assert r.stderr == ""   # quiet: TensorFlow's and the kernels' messages went into the runs' logs
    assert "cuDNN" in (out / "runs" / "theory" / "theory.log").read_text()
    fs = pd.read_csv(out / "fewshot.csv")
    assert set(fs.method) == {"mtl", "protonet"} and fs.acc.between(0, 100).all()
    # the 1-shot bodies are tested 5-way and, from the same training, 20-way
    assert sorted(zip(fs.method, fs.ways)) == [("mtl", 5), ("mtl", 20), ("protonet", 5), ("protonet", 20)]
    assert (fs.run_setting == "5w1s").all()
    # the final runs used the trial that validated best, and tuning.md lists every trial
    tuning = json.loads((out / "tuning.json").read_text())
    assert set(tuning["selected"]) == {"omniglot-minimal-5w1s/mtl", "omniglot-minimal-5w1s/protonet"}
    assert "**" in (out / "tuning.md").read_text()
    fs = fs[fs.ways == 5]
    # speedups are ratios of the measured training times in the runs' own results
    res = {m: json.loads((out / "runs" / f"omniglot-minimal-5w1s-{m}" / "results.json").read_text())
           for m in ("mtl", "protonet")}
    ratio = res["protonet"]["train_seconds"] / res["mtl"]["train_seconds"]
    assert fs.set_index("method").loc["protonet", "mtl_speedup"] == pytest.approx(ratio, rel=1e-3)
    assert (out / "efficiency.md").exists() and (out / "curves-omniglot-minimal-5w1s.png").exists()
    assert (out / "sinusoid.png").exists() and "mtl" in (out / "sinusoid.md").read_text()
    assert "| maml |" in (out / "taxonomy.md").read_text() and "L=16" in (out / "theory.md").read_text()
    assert "omniglot-minimal-5w1s-mtl" in (out / "reproduction.md").read_text()
    # every figure in both formats, listed with the command that redraws it
    figures = (out / "FIGURES.md").read_text()
    for stem in ("curves-omniglot-minimal-5w1s", "sinusoid", "theory-ntk", "theory-gradients", "efficiency_curve"):
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem
        assert f"[{stem}.png]({stem}.png)" in figures, stem
    assert f"mtl-meta reproduce --profile smoke --only theory --force --out {out}" in figures


@pytest.mark.slow
def test_paper_profile_end_to_end_on_fixtures(run_cli, tmp_path):
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    write_mini_imagenet(root, rng)
    write_tiered_imagenet(root, rng)
    write_cifar100(root, rng, per_class=16, test_per_class=4)
    only = [f"{d}-5w1s-mtl" for d in PAPER_DATASETS] + ["mini-imagenet-5w5s-metaoptnet-svm"]
    assert set(only) <= {r.name for r in get_profile("paper")}
    tiny = ['device=cpu', 'epochs=1', 'episodes_per_epoch=2', 'val_episodes=2', 'test_episodes=4', 'test_queries=3',
            'backbone_options={"channels": [8, 8, 8, 8]}']
    r = run_cli("reproduce", "--profile", "paper", "--out", str(tmp_path / "out"), "--no-progress",
                "--data-root", str(root), "--only", *only, "--set", *tiny, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    comp = pd.read_csv(out / "paper_comparison.csv")
    assert set(comp.dataset) == set(PAPER_DATASETS)
    assert "published" in comp.columns and comp.difference.notna().all()
    run = json.loads((out / "runs" / "cifar-fs-5w1s-mtl" / "run.json").read_text())
    assert run["config"]["parameters"]["backbone"] == "resnet12" and run["config"]["parameters"]["augment"] is True


def test_uncommitted_changes_leaves_out_the_output_folders(tmp_path):
    "Results written into a tracked folder (figures/) do not mark the code as changed; a changed source file does."
    from mtl_meta.runs import uncommitted_changes
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "table.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert not uncommitted_changes(tmp_path)
    (tmp_path / "figures" / "table.md").write_text("new\n")
    assert uncommitted_changes(tmp_path)                                   # without outputs, any change counts
    assert not uncommitted_changes(tmp_path, [tmp_path / "figures"])
    (tmp_path / "code.py").write_text("x = 2\n")
    assert uncommitted_changes(tmp_path, [tmp_path / "figures"])
    assert uncommitted_changes(tmp_path, ["/somewhere/else"])              # a folder outside the checkout is ignored


def test_uncommitted_changes_is_none_outside_a_checkout(tmp_path):
    from mtl_meta.runs import uncommitted_changes
    assert uncommitted_changes(tmp_path) is None
