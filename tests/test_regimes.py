"""The regime map (issue 28) on tiny settings: smaller training sets (images per class, rotations), the bodies at
fixed budgets of training images, the regimes profile and its report."""
import json

import numpy as np
import pytest
import torch

from mtl_meta import api
from mtl_meta.core import MtlMetaError
from mtl_meta.train import TrainConfig

TINY = dict(ways=5, shots=1, queries=1, episodes_per_epoch=2, val_episodes=2)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _splits(root, seed=0, **data):
    cfg = TrainConfig.from_dict({**TINY, "seed": seed})
    samplers = api._samplers("omniglot-minimal", api.DataOptions(data_root=root, **data), cfg, splits=("train", "val", "test"))
    return {k: s.split for k, s in samplers.items()}


def test_subsampling_keeps_n_images_of_every_training_class_only(omniglot_root):
    whole = _splits(omniglot_root)
    five = _splits(omniglot_root, train_images_per_class=5)
    assert np.bincount(five["train"].labels).tolist() == [5] * whole["train"].n_classes
    for split in ("val", "test"):   # validation and test classes stay whole
        assert len(five[split].labels) == len(whole[split].labels)
        assert (five[split].images == whole[split].images).all()
    again, other = _splits(omniglot_root, train_images_per_class=5), _splits(omniglot_root, seed=1, train_images_per_class=5)
    assert (again["train"].images == five["train"].images).all()        # seeded: the same images for the same seed
    assert not (other["train"].images == five["train"].images).all()    # another seed draws others
    # every kept image is one of its class's images
    for c in (0, 7):
        kept = five["train"].images[five["train"].labels == c]
        pool = whole["train"].images[whole["train"].labels == c]
        assert all(any((k == p).all() for p in pool) for k in kept)
    ten = _splits(omniglot_root, train_images_per_class=10)   # nested levels: a seed's 5 images are among its 10
    for c in (0, 7):
        larger = ten["train"].images[ten["train"].labels == c]
        assert all(any((k == p).all() for p in larger) for k in five["train"].images[five["train"].labels == c])
    with pytest.raises(MtlMetaError, match="fewer than the 21"):
        _splits(omniglot_root, train_images_per_class=21)


@pytest.mark.parametrize("count, classes", [(None, 612), (4, 612), (2, 306), (1, 153)])
def test_rotation_subsets_make_153_306_or_612_classes(omniglot_root, count, classes):
    s = _splits(omniglot_root, train_rotations=True, train_rotation_count=count)
    assert s["train"].n_classes == classes
    assert _splits(omniglot_root)["train"].n_classes == 153
    if count == 2:
        assert {n.rsplit("@", 1)[1] for n in s["train"].class_names} == {"0", "180"}


def test_budget_snapshots_hold_the_body_validated_best_so_far(omniglot_root, tmp_path):
    per_epoch = 5 * (1 + 1) * 2   # ways x (shots + queries) x episodes per epoch
    budgets = (1, per_epoch + 1, 10 ** 9)
    summary = api.train("mtl", "omniglot-minimal", out_dir=tmp_path, data_root=omniglot_root, epochs=3,
                        snapshot_images=budgets, **TINY)
    assert [h["images"] for h in summary["history"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert not (tmp_path / f"budget-{10 ** 9}.pt").exists()             # never reached
    first = torch.load(tmp_path / "budget-1.pt", weights_only=False)
    assert first["state"]["images"] == per_epoch                        # saved at the first epoch reaching it
    body = {k[len("body."):]: v for k, v in first["algorithm"].items() if k.startswith("body.")}
    assert body and all(torch.equal(first["best_body"][k], body[k]) for k in body)   # the only epoch so far is the best
    second = torch.load(tmp_path / f"budget-{per_epoch + 1}.pt", weights_only=False)
    assert second["state"]["images"] == 2 * per_epoch
    vals = [h["val_acc"] for h in summary["history"][:2]]
    body2 = {k[len("body."):]: v for k, v in second["algorithm"].items() if k.startswith("body.")}
    same_as_now = all(torch.equal(second["best_body"][k], body2[k]) for k in body2)
    assert same_as_now == (vals[1] > vals[0])                           # the later body only if it validated better
    # the snapshot is a checkpoint evaluate reads: the accuracy at that budget
    res = api.evaluate(tmp_path / "budget-1.pt", episodes=3, data_root=omniglot_root, adapt="centroid")
    assert 0 <= res.mean <= 1


def test_the_regimes_profile_moves_one_axis_at_a_time():
    from mtl_meta.profiles import REGIME_BUDGETS, REGIME_METHODS, get_profile
    runs = get_profile("regimes")
    cells = {(r.parameters["regime"]["axis"], r.parameters["regime"]["level"]) for r in runs}
    assert cells == {("images", 5), ("images", 10), ("classes", 153), ("classes", 306), ("capacity", 32)}   # 128 channels: cut
    assert len(runs) == len(cells) * len(REGIME_METHODS) and all(len(r.parameters["seeds"]) == 3 for r in runs)
    cpu = {r.parameters["method"]: r for r in get_profile("cpu") if r.tuned and r.parameters["train_config"]["shots"] == 1}
    for r in runs:   # everything but the axis equals the cpu run of the same method (whose tuning it carries over)
        ref, p = cpu[r.parameters["method"]].parameters, r.parameters
        assert r.tuned == cpu[p["method"]].tuned
        axis = p["regime"]["axis"]
        differs = {k for k in set(p) | set(ref) if p.get(k) != ref.get(k)} - {"regime", "budgets", "extra_tests", "seeds"}
        assert p["seeds"] == [0, 1, 2] and set(p["seeds"]) <= set(ref["seeds"])   # paired with the reference seeds
        expected = {"images": {"train_images_per_class"} | ({"train_config"} if p["regime"]["level"] == 5 else set()),
                    "classes": {"train_rotations"} if p["regime"]["level"] == 153 else {"train_rotation_count"},
                    "capacity": {"backbone_options"}}[axis]
        assert differs == expected, (r.name, differs)
        if differs & {"train_config"}:
            assert {k for k in p["train_config"] if p["train_config"][k] != ref["train_config"][k]} == {"queries"}
    budgeted = [r for r in cpu.values() if r.parameters.get("budgets")]
    assert {r.parameters["method"] for r in budgeted} == set(REGIME_METHODS)
    assert all(r.parameters["budgets"] == REGIME_BUDGETS for r in budgeted)


def test_the_regimes_profile_waits_for_the_cpu_tuning_and_reads_it_from_the_folder_above(run_cli, tmp_path):
    out = tmp_path / "figures" / "regimes"
    env = {"MTL_META_DATA": str(tmp_path / "no-data")}
    r = run_cli("reproduce", "--profile", "regimes", "--out", str(out), "--no-progress", "--report-only", env=env)
    assert r.returncode == 0, r.stderr
    from mtl_meta.profiles import get_profile
    assert f"report only: {len(get_profile('regimes'))} runs pending" in r.stdout
    table = (out / "regimes.md").read_text()
    assert "pending" in table and "| images | 5 | mtl |" in table
    # with the cpu selection in the folder above, the same runs resolve to the tuned values (pending only on time)
    from mtl_meta.profiles import setting_key
    selected = {setting_key("omniglot-minimal", 5, 1, m): {"trial": {"lr": 0.05}, "val_acc": 0.9, "run": "x"}
                for m in ("mtl", "metaoptnet-svm", "metaoptnet-rr", "protonet")}
    (tmp_path / "figures" / "tuning.json").write_text(json.dumps({"selected": selected}))
    r = run_cli("reproduce", "--profile", "regimes", "--out", str(out), "--no-progress", "--time-limit", "0", env=env)
    assert r.returncode == 0 and "has no selection" not in r.stdout, r.stdout
    # ... but they wait while the cpu profile's tuning of their key is not final (its trials are not in this folder)
    assert "its tuning trials (omniglot-minimal-5w1s/mtl) are not all complete" in r.stdout
    summary = (out / "reproduction.md").read_text()
    assert "'lr': 0.05" in summary
