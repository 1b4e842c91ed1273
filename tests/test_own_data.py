"""Issue 29: your own data, model and images. MTL and ProtoNet trained on a generated image folder through
the CLI and the API, evaluated, used to predict new images and exported; a torchvision ImageFolder and a
plain nn.Sequential body through the API; a backbone registered by a plugin module."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from fixtures import write_image_folder

TINY = ["--ways", "2", "--shots", "1", "--queries", "2", "--epochs", "1", "--episodes-per-epoch", "3",
        "--val-episodes", "2", "--val-queries", "2", "--no-progress"]


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "imgs", classes=10, per_class=6, size=16)


@pytest.fixture
def env(tmp_path):
    return {"MTL_META_CACHE": str(tmp_path / "cache")}


def _new_images(folder, tmp_path):
    "A support folder of 2 test classes (1 image each) and a query folder with the other images of those classes."
    from PIL import Image
    from mtl_meta.data import load_split
    test = load_split(str(folder), "test", cache=tmp_path / "cache")
    support, query, truth = tmp_path / "support", tmp_path / "query", {}
    for name in test.class_names:
        (support / name).mkdir(parents=True)
        files = sorted((folder / name).glob("*.png"))
        Image.open(files[0]).save(support / name / "a.png")
        for f in files[1:]:
            query.mkdir(exist_ok=True)
            Image.open(f).save(query / f"{name}-{f.name}")
            truth[str(query / f"{name}-{f.name}")] = name
    return support, query, truth


@pytest.mark.parametrize("method", ["mtl", "protonet"])
def test_cli_trains_evaluates_predicts_and_exports_on_an_image_folder(run_cli, folder, tmp_path, env, method):
    out = tmp_path / method
    r = run_cli("train", "--method", method, "--dataset", str(folder), *TINY, "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert (out / "history.csv").exists() and "best validation accuracy" in r.stdout
    meta = json.loads((out / "summary.json").read_text())["metadata"]
    assert meta["dataset"] == str(folder.resolve()) and meta["image_shape"] == [3, 16, 16]
    assert len(meta["normalization"][0]) == 3
    r = run_cli("evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--ways", "2", "--shots", "1",
                "--queries", "2", "--episodes", "3", "--json", "--no-progress", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert 0 <= json.loads(r.stdout)["mean"] <= 1
    support, query, truth = _new_images(folder, tmp_path)
    r = run_cli("predict", "--checkpoint", str(out / "checkpoint.pt"), "--support", str(support),
                "--query", str(query), "--out", str(tmp_path / "pred.csv"), env=env)
    assert r.returncode == 0, r.stderr
    lines = [l.split("\t") for l in r.stdout.strip().splitlines()]
    assert {l[0] for l in lines} == set(truth) and all(l[1] in set(truth.values()) for l in lines)
    # each class is a noisy copy of one pattern: even a barely trained body matches most queries
    assert sum(truth[l[0]] == l[1] for l in lines) >= 0.7 * len(lines)
    assert (tmp_path / "pred.csv").read_text().startswith("image,class,probability")
    r = run_cli("export", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "body.pt"), env=env)
    assert r.returncode == 0 and "FutureWarning" not in r.stderr, r.stderr
    # the export loads and runs in a Python that cannot import mtl_meta (and says nothing: no deprecation warning)
    code = ("import sys, json, torch; sys.modules['mtl_meta'] = None; extra = {'meta.json': ''}; "
            f"m = torch.export.load({str(tmp_path / 'body.pt')!r}, extra_files=extra).module(); "
            "z = m(torch.rand(4, 3, 16, 16)); print(json.dumps([list(z.shape), json.loads(extra['meta.json'])]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0 and "FutureWarning" not in p.stderr, p.stderr
    shape, desc = json.loads(p.stdout)
    assert shape[0] == 4 and desc["method"] == method and desc["image_shape"] == [3, 16, 16]
    assert desc["preprocessing"]["features"] == ("L2-normalised" if method == "mtl" else "as the body gives them")
    # the exported program gives the features heads are fitted on (Algorithm.features behind the recorded
    # normalisation, L2-normalised for MTL), for any batch size
    import torch
    from mtl_meta.api import load_trained
    exported = torch.export.load(tmp_path / "body.pt").module()
    algorithm, _ = load_trained(out / "checkpoint.pt")
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in meta["normalization"])
    for n in (1, 5):
        x = torch.rand(n, 3, 16, 16)
        with torch.no_grad():
            assert torch.allclose(exported(x), algorithm.features((x - mean) / std), atol=1e-5)


def test_cli_bad_image_folders_are_one_line(run_cli, tmp_path, env):
    few = write_image_folder(tmp_path / "few", classes=10, per_class=2, size=16)
    r = run_cli("train", "--dataset", str(few), *TINY, "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "at most 2 keeps every class" in r.stderr
    r = run_cli("train", "--dataset", str(tmp_path / "nothing"), *TINY, "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr


def test_api_with_a_torchvision_image_folder_and_a_plain_module(folder, tmp_path, monkeypatch):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor
    from mtl_meta import api
    from mtl_meta.episodes import split_dataset
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))
    ds = ImageFolder(str(folder), transform=ToTensor())
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    cfg = dict(ways=2, shots=1, queries=2, epochs=1, episodes_per_epoch=3, val_episodes=2, val_queries=2)
    for method in ("mtl", "protonet", "maml"):
        s = api.train(method, dataset=ds, backbone=body, out_dir=tmp_path / method, **cfg)
        assert s["metadata"]["backbone"] == "<Sequential>" and s["metadata"]["dataset"] == "<ImageFolder>"
    assert body.out_dim == 32   # inferred by one forward pass
    parts = split_dataset(ds)
    with pytest.raises(Exception, match="pass that module as body="):
        api.evaluate(tmp_path / "mtl" / "checkpoint.pt", dataset=parts)
    res = api.evaluate(tmp_path / "mtl" / "checkpoint.pt", dataset=parts, body=body, ways=2, queries=2, episodes=3)
    assert 0 <= res.mean <= 1
    # a folder by path through the API, then predict in a few lines
    s = api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "p", **cfg)
    support, query, truth = _new_images(folder, tmp_path)
    rows = api.predict(tmp_path / "p" / "checkpoint.pt", support, query)
    assert {r["image"] for r in rows} == set(truth) and all(0 < r["probability"] <= 1 for r in rows)


PLUGIN_BACKBONE = '''
from torch import nn
from mtl_meta.models import BACKBONES

def tiny(in_channels, image_size, width=4):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

BACKBONES["tiny-cnn"] = tiny
'''


def test_a_plugin_backbone_trains_and_evaluates_through_the_cli(run_cli, folder, tmp_path, env):
    (tmp_path / "toy_backbone.py").write_text(PLUGIN_BACKBONE)
    env = {**env, "MTL_META_PLUGINS": "toy_backbone",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))}
    out = tmp_path / "run"
    r = run_cli("train", "--method", "mtl", "--dataset", str(folder), "--backbone", "tiny-cnn", *TINY,
                "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--ways", "2", "--queries", "2",
                "--episodes", "2", "--json", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--backbone", "tiny-cnn", "--dataset", str(folder), *TINY, "--out", str(tmp_path / "x"),
                env={"MTL_META_CACHE": env["MTL_META_CACHE"]})
    assert r.returncode == 2 and "unknown backbone 'tiny-cnn'" in r.stderr


def test_a_checkpoint_of_the_low_level_route_is_accepted_by_evaluate(run_cli, folder, tmp_path, monkeypatch):
    "Trainer built by hand (no metadata): its checkpoint describes the run, and evaluate rebuilds the model from it."
    from mtl_meta import api
    from mtl_meta.data import load_split
    from mtl_meta.episodes import EpisodeSampler, MetaBatchSampler
    from mtl_meta.gbml import make_algorithm
    from mtl_meta.models import make_backbone
    from mtl_meta.train import TrainConfig, Trainer
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))
    tr, va = (load_split(str(folder), s) for s in ("train", "val"))
    algorithm = make_algorithm("protonet", make_backbone("conv4", 3, 16), n_classes=tr.n_classes, ways=2)
    cfg = TrainConfig(ways=2, shots=1, queries=2, epochs=1, episodes_per_epoch=2, val_episodes=2, val_queries=2)
    Trainer(algorithm, MetaBatchSampler(tr, 2, 1, 2), EpisodeSampler(va, 2, 1, 2), cfg, out_dir=tmp_path / "low").fit()
    res = api.evaluate(tmp_path / "low" / "checkpoint.pt", dataset=str(folder), queries=2, episodes=3)
    assert (res.ways, res.shots) == (2, 1) and 0 <= res.mean <= 1   # ways and shots: the checkpoint's
    r = run_cli("evaluate", "--checkpoint", str(tmp_path / "low" / "checkpoint.pt"), "--dataset", str(folder),
                "--queries", "2", "--episodes", "2", "--no-progress", env={"MTL_META_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0 and "2-way 1-shot accuracy" in r.stdout, r.stderr


def test_top_level_help_does_not_import_torch_and_python_m_works():
    code = ("import sys, mtl_meta.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "0 False", r.stdout + r.stderr
    assert "predict" in r.stdout and "export" in r.stdout
    r = subprocess.run([sys.executable, "-m", "mtl_meta", "train", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--dataset-option" in r.stdout


def test_epoch_lines_without_the_bar_and_a_cpu_budget_note(run_cli, folder, tmp_path, env, capsys):
    import argparse
    from mtl_meta.cli import _warn_cpu_budget
    r = run_cli("train", "--method", "protonet", "--dataset", str(folder), *TINY, "--epochs", "2",
                "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 2 and all("val acc" in l for l in lines), r.stdout
    assert "note:" not in r.stderr   # a CPU-sized budget: no note
    budget = dict(epochs=100, episodes_per_epoch=1600, meta_batch_size=1, device="cpu", max_steps=None)
    _warn_cpu_budget(argparse.Namespace(**budget))
    assert "can take hours" in capsys.readouterr().err
    for change in ({"device": "cuda"}, {"max_steps": 500}, {"epochs": 5}):
        _warn_cpu_budget(argparse.Namespace(**{**budget, **change}))
        assert capsys.readouterr().err == ""


def test_tensorboard_wall_clock_is_exact(tmp_path):
    "The wall-clock scalar is elapsed seconds (exact in float32); the event's own double wall time is the clock."
    import time
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from mtl_meta.logs import TrainingLog
    log = TrainingLog(None, tmp_path / "tb")
    before = time.time()
    log(None, {"epoch": 0, "step": 3, "images": 30, "seconds": 1.5, "train_loss": 1.0, "train_acc": 0.5,
               "val_acc": 0.6, "lr": 1e-3})
    log.close()
    [p] = ea.EventAccumulator(str(tmp_path / "tb")).Reload().Scalars("seconds/wall")
    assert 0 <= p.value < 60 and abs(p.wall_time - before) < 60
