"""Issue 40's silent traps, each a test that failed before the fix: splits that move when a class is added,
checkpoints that do not know their classes, a user transform that dropped the normalisation, and an export that
left out MTL's feature normalisation."""
import shutil

import numpy as np
import pytest
import torch

from fixtures import write_image_folder
from mtl_meta.core import MtlMetaError

TINY = dict(ways=2, shots=1, queries=2, epochs=1, episodes_per_epoch=2, val_episodes=2, val_queries=2)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))


def _splits(folder, **options):
    from mtl_meta.data import folder_class_split
    return {s: folder_class_split(folder, s, **options) for s in ("train", "val", "test")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adding_or_removing_a_class_folder_moves_no_other_class(tmp_path, seed):
    folder = write_image_folder(tmp_path / "imgs", classes=40, per_class=1, size=4)
    before = _splits(folder, seed=seed)
    shutil.copytree(folder / "class07", folder / "zz-new-class")          # one class added
    after = _splits(folder, seed=seed)
    assert {s: [c for c in after[s] if c != "zz-new-class"] for s in after} == before
    shutil.rmtree(folder / "class03")                                     # one removed
    shrunk = _splits(folder, seed=seed)
    assert {s: [c for c in shrunk[s] if c != "zz-new-class"] for s in shrunk} == \
        {s: [c for c in before[s] if c != "class03"] for s in before}


def test_a_torch_dataset_split_is_stable_too(tmp_path):
    from torchvision.datasets import ImageFolder
    from mtl_meta.episodes import split_dataset
    folder = write_image_folder(tmp_path / "imgs", classes=30, per_class=1, size=4)
    names = lambda parts: {s: set(p.class_names) for s, p in parts.items()}
    before = names(split_dataset(ImageFolder(str(folder))))
    shutil.copytree(folder / "class00", folder / "class00b")
    after = names(split_dataset(ImageFolder(str(folder))))
    assert {s: after[s] - {"class00b"} for s in after} == before


def test_a_checkpoint_records_its_classes_and_evaluate_refuses_seen_ones(tmp_path, cache):
    from mtl_meta import api
    from mtl_meta.train import load_checkpoint
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    split = _splits(folder)
    api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "run", **TINY)
    meta = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["metadata"]
    assert meta["classes"] == {"train": split["train"], "val": split["val"]}
    assert set(meta["data_fingerprint"]) == {"train", "val"}
    # evaluating on the split as it was works
    res = api.evaluate(tmp_path / "run", ways=2, shots=1, queries=2, episodes=2)
    assert 0 <= res.mean <= 1
    # class lists that put a training class into test (the split changed since training): refused in one line
    leaked = split["train"][0]
    for s, names in (("train", split["train"][1:]), ("val", split["val"]), ("test", split["test"] + [leaked])):
        (folder / f"{s}.txt").write_text("\n".join(names) + "\n")
    with pytest.raises(MtlMetaError, match="trained or validated on") as e:
        api.evaluate(tmp_path / "run", ways=2, shots=1, queries=2, episodes=2)
    assert leaked in str(e.value) and "\n" not in str(e.value)
    # the summary keeps counts, not the lists
    import json
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["metadata"]
    assert "classes" not in summary and summary["class_counts"] == {"train": len(split["train"]),
                                                                    "val": len(split["val"])}


def test_predict_names_support_classes_the_body_has_seen(tmp_path, cache, capsys):
    from mtl_meta import api
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    split = _splits(folder)
    api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "run", **TINY)
    support = tmp_path / "support"
    for name in split["train"][:2]:   # two classes the body trained on
        shutil.copytree(folder / name, support / name)
    rows = api.predict(tmp_path / "run", support, folder / split["train"][0])
    err = capsys.readouterr().err
    assert len(rows) == 4 and "warning: 2 support class(es)" in err and split["train"][0] in err


def _first_batch(folder, **data):
    from mtl_meta.api import DataOptions, _samplers
    from mtl_meta.train import TrainConfig
    cfg = TrainConfig.from_dict(dict(ways=2, shots=1, queries=2, meta_batch_size=1, seed=3, val_queries=2))
    samplers = _samplers(str(folder), DataOptions(dataset_options={}, **data), cfg)
    return samplers["train"].sample().support


def test_a_user_transform_runs_before_the_normalisation(tmp_path, cache):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    plain = _first_batch(folder)
    identity = _first_batch(folder, transform=lambda im: im)
    assert torch.equal(identity, plain)                      # the same normalised inputs as without a transform
    assert abs(float(plain.mean())) < 1.0 and float(plain.min()) < 0   # normalised: centred, not [0, 1]
    raw = _first_batch(folder, transform=lambda im: im, transform_replaces=True)   # asked for by name
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1 and not torch.equal(raw, plain)


def test_exported_features_fit_the_same_head_as_the_library(tmp_path, cache):
    from mtl_meta import api
    from mtl_meta.adapt import ADAPTERS
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    api.train("mtl", dataset=folder, backbone="conv4", out_dir=tmp_path / "run", **TINY)
    api.export_body(tmp_path / "run", tmp_path / "body.pt2")
    exported = torch.export.load(str(tmp_path / "body.pt2")).module()
    algorithm, meta = api.load_trained(tmp_path / "run")
    files = sorted(folder.glob("class0[0-3]/*.png"))
    x = api._read_images(files, meta)
    y = torch.tensor([int(f.parent.name[-2:]) for f in files])
    tf = api._eval_transform(meta, meta["dataset"])
    with torch.no_grad():
        z_lib, z_exp = algorithm.features(tf(x)), exported(x)
    assert torch.allclose(z_exp.norm(dim=-1), torch.ones(len(x)), atol=1e-5)   # MTL's features are unit vectors
    support, query = np.arange(len(x)) % 4 == 0, np.arange(len(x)) % 4 != 0
    heads = [ADAPTERS["logreg"](z[support], y[support], z[query], 4).argmax(-1) for z in (z_lib, z_exp)]
    assert torch.equal(heads[0], heads[1])
    assert torch.allclose(z_lib, z_exp, atol=1e-5)


def test_a_folder_as_it_is_mixed_modes_and_sizes_becomes_one_shape(tmp_path, cache):
    from PIL import Image
    from mtl_meta.data import load_split
    from mtl_meta.datasets import _decode_image
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(folder / "class00" / "grey.png")
    Image.fromarray(np.full((24, 40, 3), 200, np.uint8)).save(folder / "class01" / "wide.jpg")
    with pytest.warns(UserWarning) as caught:
        parts = {s: load_split(str(folder), s, cache=cache) for s in ("train", "val", "test")}
    said = " ".join(str(w.message) for w in caught)
    assert "mixes 1 grey and 49 colour images" in said and "2 size(s) (16x16, 40x24)" in said
    assert {p.image_shape for p in parts.values()} == {(3, 16, 16)}   # every split the same shape
    # the named rules: 'crop' keeps the aspect ratio (a centre square), 'stretch' squeezes the whole image
    wide = np.zeros((20, 40, 3), np.uint8); wide[:, :10] = 255     # a white band on the left quarter
    buf = __import__("io").BytesIO(); Image.fromarray(wide).save(buf, "png")
    crop = _decode_image(buf.getvalue(), 10, "RGB", "wide", "crop")
    stretch = _decode_image(buf.getvalue(), 10, "RGB", "wide", "stretch")
    assert crop.shape == stretch.shape == (3, 10, 10)
    assert crop[:, :, :2].mean() < 30 and stretch[:, :, :2].mean() > 200   # the band is cut off / kept
    with pytest.raises(MtlMetaError, match="resize must be one of stretch, crop"):
        load_split(str(folder), "train", cache=cache, resize="fit")


def test_data_info_takes_the_options_train_takes(run_cli, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    env = {"MTL_META_CACHE": str(tmp_path / "cache")}
    r = run_cli("data", "info", "--dataset", str(folder), "--dataset-option", "image_size=8", "channels=1", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("1x8x8") == 3 and "3x16x16" not in r.stdout
    r = run_cli("data", "info", "--dataset", str(folder), "--dataset-option", "resize=fit", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "resize must be one of" in r.stderr


def test_a_class_too_small_for_the_episodes_is_left_out_with_its_name(tmp_path, cache):
    from mtl_meta import api
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    train_classes = _splits(folder)["train"]
    small = train_classes[0]
    for f in sorted((folder / small).glob("*.png"))[2:]:   # a training class with 2 images; episodes take 1 + 2
        f.unlink()
    with pytest.warns(UserWarning, match=rf"1 class\(es\) of imagefolder/train have fewer than the 1 shots \+ 2 "
                                         rf"queries an episode takes and are left out: '{small}' \(2\)"):
        s = api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "run", **TINY)
    assert s["steps"] > 0
    with pytest.raises(MtlMetaError, match=f"'{small}' \\(2\\)"):
        api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "strict", strict_classes=True,
                  **TINY)


def test_validation_and_test_queries_fit_small_classes_and_say_the_flag(tmp_path, cache):
    from mtl_meta import api
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=6, size=16)
    # the default 15 validation queries do not fit 6-image classes: 5 are used, and the warning names the flag
    with pytest.warns(UserWarning, match=r"too few for 1 shots \+ 15 queries; its episodes use 5 queries per class "
                                         r"\(set --val-queries"):
        api.train("protonet", dataset=folder, backbone="conv4", out_dir=tmp_path / "run", ways=2, shots=1, queries=2,
                  epochs=1, episodes_per_epoch=2, val_episodes=2)
    with pytest.warns(UserWarning, match=r"its episodes use 5 queries per class \(set --queries"):
        res = api.evaluate(tmp_path / "run", ways=2, shots=1, episodes=2)   # EvalConfig's default: 15 queries
    assert 0 <= res.mean <= 1
