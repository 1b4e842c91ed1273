"""Data loaders on the real Omniglot minimal sets and on fixtures written in each benchmark's real
on-disk format; episodes drawn from them; every bad input's one-line error."""
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from mtl_meta.core import MtlMetaError
from mtl_meta.data import (CIFAR_FS_SPLIT, FC100_SPLIT, OMNIGLOT_MINIMAL_SPLIT, SPLITS, describe_dataset,
                           load_split, safe_pickle_load)
from mtl_meta.episodes import EpisodeSampler

from fixtures import write_cifar100


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def _one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg


# -- the real Omniglot minimal sets -------------------------------------------------------------

def test_omniglot_minimal_real_splits_and_episodes(omniglot_root, cache):
    splits = {s: load_split("omniglot-minimal", s, data_root=omniglot_root, cache=cache) for s in SPLITS}
    assert sum(d.n_classes for d in splits.values()) == 242          # 8 alphabets, Greek/Latin counted once
    for s, d in splits.items():
        assert {n.split("/")[0] for n in d.class_names} == set(OMNIGLOT_MINIMAL_SPLIT[s])
        assert np.all(np.bincount(d.labels) == 20) and d.image_shape == (1, 28, 28)
    # the decoded images equal a fresh decode of the PNG inside the archive
    te = splits["test"]
    name = te.class_names[7]
    with zipfile.ZipFile(omniglot_root / "omniglot" / "images_background_small1.zip") as zf:
        members = sorted(m for m in zf.namelist() if f"/{name}/" in m and m.endswith(".png"))
        png = Image.open(io.BytesIO(zf.read(members[0]))).convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    expected = 255 - np.asarray(png)
    first = int(np.flatnonzero(te.labels == 7)[0])
    assert np.array_equal(te.images[first, 0], expected)

    # episodes: right shapes, labels, and images that belong to the classes they are labelled with
    sampler = EpisodeSampler(te, ways=5, shots=5, queries=15, seed=0)
    ep = sampler.sample_batch(4)
    assert ep.support.shape == (4, 25, 1, 28, 28) and ep.query.shape == (4, 75, 1, 28, 28)
    assert 0 <= float(ep.support.min()) and float(ep.support.max()) <= 1
    for b in range(4):
        for imgs, labels in ((ep.support[b], ep.support_labels[b]), (ep.query[b], ep.query_labels[b])):
            g = ep.classes[b][labels]
            for x, c in zip(imgs, g):
                pool = torch.from_numpy(np.asarray(te.images[te.labels == int(c)])).float() / 255
                assert (pool == x).flatten(1).all(1).any()
    # the cache is used on the second load (memory-mapped) and gives the same arrays
    again = load_split("omniglot-minimal", "test", data_root=omniglot_root, cache=cache)
    assert isinstance(again.images, np.memmap) and np.array_equal(np.asarray(again.images), te.images)


def test_data_info_cli(run_cli, omniglot_root, tmp_path):
    r = run_cli("data", "info", "--dataset", "omniglot-minimal", "--data-root", str(omniglot_root),
                env={"MTL_META_CACHE": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["split", "classes", "images"]
    table = {l.split()[0]: l.split()[1:3] for l in lines[1:]}
    assert table == {"train": ["153", "3060"], "val": ["39", "780"], "test": ["50", "1000"]}
    missing = run_cli("data", "info", "--dataset", "mini-imagenet", "--data-root", str(tmp_path))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "mini-imagenet not found" in missing.stderr and "--data-root" in missing.stderr


# -- fixtures in the real formats ------------------------------------------------------------------

def _images(n, size, rng):
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _png(arr):
    buf = io.BytesIO(); Image.fromarray(arr).save(buf, format="PNG"); return buf.getvalue()


def test_mini_imagenet_metaoptnet_layout(tmp_path, cache):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mini-imagenet"; folder.mkdir()
    files = {"train": "miniImageNet_category_split_train_phase_train.pkl", "val": "miniImageNet_category_split_val.pkl",
             "test": "miniImageNet_category_split_test.pkl"}
    raw_ids = {"train": [0, 1, 2, 3, 4, 5], "val": [64, 65, 66, 67, 68], "test": [80, 81, 82, 83, 84]}
    written = {}
    for s, f in files.items():
        labels = np.repeat(raw_ids[s], 21)
        rng.shuffle(labels)
        x = _images(len(labels), 84, rng)
        cat = {f"n0{i:07d}": i for i in raw_ids[s]}
        # python-2-style pickle with bytes keys, as in the original release
        (folder / f).write_bytes(pickle.dumps({b"data": x, b"labels": list(labels), b"catname2label": cat}, protocol=2))
        written[s] = (x, labels)
    for s in SPLITS:
        d = load_split("mini-imagenet", s, data_root=tmp_path, cache=cache)
        x, labels = written[s]
        assert d.n_classes == len(raw_ids[s]) and d.image_shape == (3, 84, 84)
        assert d.class_names == [f"n0{i:07d}" for i in raw_ids[s]]
        np.testing.assert_array_equal(np.asarray(d.images), x.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(np.array(raw_ids[s])[d.labels], labels)
    ep = EpisodeSampler(load_split("mini-imagenet", "test", data_root=tmp_path, cache=cache), 5, 1, 15).sample()
    assert ep.support.shape == (5, 3, 84, 84)


def test_mini_imagenet_ravi_cache_layout(tmp_path, cache):
    rng = np.random.default_rng(1)
    folder = tmp_path / "mini-imagenet"; folder.mkdir()
    for s in SPLITS:
        x = _images(30, 84, rng)
        perm = rng.permutation(30)
        class_dict = {"n03": list(perm[:10]), "n01": list(perm[10:20]), "n02": list(perm[20:])}
        (folder / f"mini-imagenet-cache-{s}.pkl").write_bytes(pickle.dumps({"image_data": x, "class_dict": class_dict}))
        d = load_split("mini-imagenet", s, data_root=tmp_path, cache=cache)
        assert d.class_names == ["n01", "n02", "n03"]
        assert sorted(np.flatnonzero(d.labels == 0)) == sorted(perm[10:20])


def test_tiered_imagenet_npz_and_png_layouts(tmp_path, cache):
    rng = np.random.default_rng(2)
    folder = tmp_path / "tiered-imagenet"; folder.mkdir()
    for s in SPLITS:
        specific = np.repeat([5, 2, 9], 4)
        names = [f"class{i}" for i in range(10)]
        x = _images(len(specific), 84, rng)
        labels = {"label_specific": specific, "label_general": specific // 3, "label_specific_str": names,
                  "label_general_str": ["g0", "g1", "g2", "g3"]}
        (folder / f"{s}_labels.pkl").write_bytes(pickle.dumps(labels))
        if s == "test":   # Ren et al.'s PNG pickle
            (folder / f"{s}_images_png.pkl").write_bytes(pickle.dumps([np.frombuffer(_png(a), np.uint8) for a in x]))
        else:
            np.savez(folder / f"{s}_images.npz", images=x)
        d = load_split("tiered-imagenet", s, data_root=tmp_path, cache=cache)
        assert d.class_names == ["class2", "class5", "class9"]
        np.testing.assert_array_equal(d.labels, np.repeat([1, 0, 2], 4))
        np.testing.assert_array_equal(np.asarray(d.images), x.transpose(0, 3, 1, 2))  # PNG is lossless


def test_cifar_fs_and_fc100_from_cifar100_pickles(tmp_path, cache):
    fine_names, coarse_of = write_cifar100(tmp_path, np.random.default_rng(3))
    seen = {"cifar-fs": set(), "fc100": set()}
    for name in seen:
        for s in SPLITS:
            d = load_split(name, s, data_root=tmp_path, cache=cache)
            assert d.image_shape == (3, 32, 32) and np.all(np.bincount(d.labels) == 4)
            if name == "cifar-fs":
                assert set(d.class_names) == set(CIFAR_FS_SPLIT[s])
            else:
                assert {coarse_of[c] for c in d.class_names} == set(FC100_SPLIT[s])
            assert not (seen[name] & set(d.class_names))
            seen[name] |= set(d.class_names)
    assert seen["cifar-fs"] == seen["fc100"] == set(fine_names)
    assert [len(v) for v in CIFAR_FS_SPLIT.values()] == [64, 16, 20]


# -- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["omniglot", "omniglot-minimal", "mini-imagenet", "tiered-imagenet", "cifar-fs", "fc100"])
def test_missing_dataset_names_layout_source_and_option(tmp_path, name):
    with pytest.raises(MtlMetaError) as e:
        load_split(name, "train", data_root=tmp_path, cache=tmp_path / "c")
    _one_line(e, f"{name} not found", "expected", "get it from", "--data-root")


def test_unknown_names_and_unreadable_root(tmp_path):
    with pytest.raises(MtlMetaError) as e:
        load_split("imagenet-21k", "train", data_root=tmp_path)
    _one_line(e, "unknown data set 'imagenet-21k'", "omniglot-minimal")
    with pytest.raises(MtlMetaError) as e:
        load_split("mini-imagenet", "dev", data_root=tmp_path)
    _one_line(e, "unknown split 'dev'")
    with pytest.raises(MtlMetaError) as e:
        load_split("mini-imagenet", "train", data_root=tmp_path / "nowhere")
    _one_line(e, "does not exist")


def test_crafted_pickle_is_refused(tmp_path, cache):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    folder = tmp_path / "mini-imagenet"; folder.mkdir()
    (folder / "mini-imagenet-cache-train.pkl").write_bytes(pickle.dumps({"image_data": Evil(), "class_dict": {}}))
    with pytest.raises(MtlMetaError) as e:
        load_split("mini-imagenet", "train", data_root=tmp_path, cache=cache)
    _one_line(e, "refusing to load", "system")
    assert not (tmp_path / "pwned").exists()
    # plain containers and arrays still load
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": np.arange(3), "b": [1, (2, 3)], "c": {"d": b"x"}}))
    assert safe_pickle_load(tmp_path / "ok.pkl")["b"] == [1, (2, 3)]


def test_truncated_and_misshaped_files_name_the_file(tmp_path, cache):
    rng = np.random.default_rng(4)
    folder = tmp_path / "mini-imagenet"; folder.mkdir()
    f = folder / "mini-imagenet-cache-train.pkl"
    blob = pickle.dumps({"image_data": _images(6, 84, rng), "class_dict": {"a": [0, 1, 2], "b": [3, 4, 5]}})
    f.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MtlMetaError) as e:
        load_split("mini-imagenet", "train", data_root=tmp_path, cache=cache)
    _one_line(e, str(f), "truncated")
    f.write_bytes(pickle.dumps({"image_data": _images(6, 32, rng), "class_dict": {"a": [0, 1, 2], "b": [3, 4, 5]}}))
    with pytest.raises(MtlMetaError) as e:
        load_split("mini-imagenet", "train", data_root=tmp_path, cache=cache)
    _one_line(e, str(f), "(6, 32, 32, 3)", "expected (n, 84, 84, 3)")
    tiered = tmp_path / "tiered-imagenet"; tiered.mkdir()
    (tiered / "train_labels.pkl").write_bytes(pickle.dumps({"label_specific": np.zeros(4, int)}))
    (tiered / "train_images.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(MtlMetaError) as e:
        load_split("tiered-imagenet", "train", data_root=tmp_path, cache=cache)
    _one_line(e, "train_images.npz", "truncated")


def test_corrupt_omniglot_archive_fails_its_checksum(tmp_path, cache, omniglot_root):
    folder = tmp_path / "omniglot"; folder.mkdir()
    src = omniglot_root / "omniglot"
    for n in ("images_background_small1.zip", "SHA256SUMS"):
        (folder / n).write_bytes((src / n).read_bytes())
    data = (src / "images_background_small2.zip").read_bytes()
    (folder / "images_background_small2.zip").write_bytes(data[:-1000])
    with pytest.raises(MtlMetaError) as e:
        load_split("omniglot-minimal", "test", data_root=tmp_path, cache=cache)
    _one_line(e, "images_background_small2.zip", "SHA256")


def test_impossible_episodes_fail_at_construction(omniglot_root, cache):
    te = load_split("omniglot-minimal", "test", data_root=omniglot_root, cache=cache)
    with pytest.raises(MtlMetaError) as e:
        EpisodeSampler(te, ways=51, shots=1, queries=1)
    _one_line(e, "51-way", "only 50 classes")
    with pytest.raises(MtlMetaError) as e:
        EpisodeSampler(te, ways=5, shots=10, queries=15)
    _one_line(e, "10 shots + 15 queries", "at most 20 keeps every class")


def test_sampler_state_resumes_the_same_episodes(omniglot_root, cache):
    te = load_split("omniglot-minimal", "test", data_root=omniglot_root, cache=cache)
    a = EpisodeSampler(te, 5, 1, 5, seed=3)
    a.sample_batch(7)
    state = a.state_dict()
    buf = io.BytesIO(); torch.save(state, buf); buf.seek(0)
    b = EpisodeSampler(te, 5, 1, 5, seed=99)
    b.load_state_dict(torch.load(buf, weights_only=True))
    x, y = a.sample_batch(3), b.sample_batch(3)
    assert torch.equal(x.support, y.support) and torch.equal(x.classes, y.classes)


# -- issue 29: data sets as registry records, image folders, per-image transforms ------------------

# Hashes of seeded episodes computed with the code before data sets became registry records and
# transforms became per-image (commit f55e224): the built-in path must give the same episodes.
OLD_EPISODE_HASHES = {
    "cifar-fs-aug0": "c6b2c71887542584eb0b", "cifar-fs-aug1": "d4a6de8dfa8ac1a0c9cb",
    "mini-imagenet-aug0": "3d566406e50be7a519c7", "mini-imagenet-aug1": "87f8987aec8273177c84",
    "omniglot-train-rot0": "dfbcd51055ad86c56810", "omniglot-train-rot1": "163b6b2440cd3a705ceb",
    "omniglot-val-rot0": "884e5a418333d97ed2ce", "omniglot-val-rot1": "884e5a418333d97ed2ce",
}


def _episodes_hash(eps):
    import hashlib
    m = hashlib.sha256()
    for e in eps:
        for t in (e.support, e.query, e.support_labels, e.query_labels, e.classes):
            m.update(t.detach().cpu().contiguous().numpy().tobytes())
    return m.hexdigest()[:20]


def test_builtin_episodes_are_those_of_the_old_code(omniglot_root, monkeypatch, tmp_path):
    from mtl_meta.api import DataOptions, _samplers
    from mtl_meta.train import TrainConfig
    from mtl_meta.data import train_transform
    from mtl_meta.episodes import FewShotSplit
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))
    got = {}
    for rot in (False, True):
        s = _samplers("omniglot-minimal", DataOptions(data_root=omniglot_root, train_rotations=rot),
                      TrainConfig(ways=5, shots=1, queries=5, seed=7, meta_batch_size=2))
        got[f"omniglot-train-rot{int(rot)}"] = _episodes_hash([e for _ in range(3) for e in s["train"].sample_step()])
        got[f"omniglot-val-rot{int(rot)}"] = _episodes_hash([s["val"].sample() for _ in range(3)])
    g = np.random.default_rng(0)
    rgb = FewShotSplit(g.integers(0, 256, (60, 3, 12, 12), dtype=np.uint8), np.repeat(np.arange(6), 10),
                       [f"c{i}" for i in range(6)], name="rgb")
    for ds in ("cifar-fs", "mini-imagenet"):
        for aug in (False, True):
            torch.manual_seed(3)
            s = EpisodeSampler(rgb, 3, 2, 3, seed=5, transform=train_transform(ds, augment=aug))
            got[f"{ds}-aug{int(aug)}"] = _episodes_hash([s.sample() for _ in range(3)])
    assert got == OLD_EPISODE_HASHES


def test_corrupt_cache_entry_is_detected_and_rebuilt(omniglot_root, cache):
    first = load_split("omniglot-minimal", "test", cache=cache)
    expected = np.array(first.images)
    [entry] = [p for p in (cache / "datasets").iterdir() if p.name.startswith("omniglot-minimal-test-")]
    meta = (entry / "meta.json").read_text()
    assert "crc32" in meta and "size" in meta
    with open(entry / "images.npy", "r+b") as f:   # flip bytes in the middle: same size, wrong content
        f.seek(entry.joinpath("images.npy").stat().st_size // 2)
        f.write(b"\xff\x00\xff\x00")
    with pytest.warns(UserWarning, match="corrupt"):
        again = load_split("omniglot-minimal", "test", cache=cache)
    assert np.array_equal(np.array(again.images), expected)
    (entry / "labels.npy").write_bytes(b"trunc")   # truncated
    with pytest.warns(UserWarning, match="corrupt"):
        assert np.array_equal(load_split("omniglot-minimal", "test", cache=cache).labels, first.labels)
    # the rebuilt entry is clean: the next load reads it without a warning
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_split("omniglot-minimal", "test", cache=cache)
    assert (entry / "verified").exists()   # checksums found right: not re-read until a file changes
    import time
    time.sleep(0.05)   # past the file system's timestamp granularity
    with open(entry / "images.npy", "r+b") as f:   # a later change is still caught: it moves the file's mtime
        f.seek(200)
        f.write(b"\x01\x02\x03")
    with pytest.warns(UserWarning, match="corrupt"):
        assert np.array_equal(np.array(load_split("omniglot-minimal", "test", cache=cache).images), expected)


def test_image_folder_splits_and_sees_a_changed_image(tmp_path, cache):
    from fixtures import write_image_folder
    folder = write_image_folder(tmp_path / "imgs", classes=10)
    parts = {s: load_split(str(folder), s, cache=cache) for s in SPLITS}
    from mtl_meta.episodes import class_split_of
    assert all(class_split_of(c) == s for s, p in parts.items() for c in p.class_names)   # by name and seed alone
    assert all(p.n_classes >= 2 for p in parts.values())
    assert len(set().union(*(p.class_names for p in parts.values()))) == 10
    # the same seed gives the same split; another seed another one
    assert load_split(str(folder), "train", cache=cache, seed=0).class_names == parts["train"].class_names
    assert load_split(str(folder), "train", cache=cache, seed=1).class_names != parts["train"].class_names
    cls = parts["val"].class_names[1]
    Image.fromarray(np.full((12, 12, 3), 7, np.uint8)).save(folder / cls / "3.png")
    again = load_split(str(folder), "val", cache=cache)
    row = np.flatnonzero(again.labels == 1)[3]
    assert (again.images[row] == 7).all() and not (parts["val"].images[row] == 7).all()
    # class lists and the size / channel options
    for s, names in (("train", "class00 class01 class02"), ("val", "class03 class04"), ("test", "class05 class06")):
        (folder / f"{s}.txt").write_text(names.replace(" ", "\n") + "\n")
    small = load_split(str(folder), "test", cache=cache, image_size=8, channels=1)
    assert small.class_names == ["class05", "class06"] and small.image_shape == (1, 8, 8)


def test_image_folder_bad_input_is_one_line(tmp_path, cache):
    from fixtures import write_image_folder
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=3)
    n_train = load_split(str(folder), "train", cache=cache).n_classes
    with pytest.raises(MtlMetaError) as e:
        EpisodeSampler(load_split(str(folder), "train", cache=cache), ways=n_train + 1, shots=1, queries=1)
    _one_line(e, f"only {n_train} classes", f"--ways {n_train}")
    with pytest.raises(MtlMetaError) as e:
        EpisodeSampler(load_split(str(folder), "train", cache=cache), ways=2, shots=2, queries=2)
    _one_line(e, "at most 3 keeps every class")
    (folder / "class00" / "9.png").write_bytes(b"not a png")
    with pytest.raises(MtlMetaError) as e:
        load_split(str(folder), "train", cache=cache)
    _one_line(e, "9.png is not a readable image")
    (folder / "class00" / "9.png").unlink()
    Image.fromarray(np.zeros((12, 12), np.uint8), "L").save(folder / "class01" / "grey.png")
    with pytest.warns(UserWarning, match="mixes 1 grey and 36 colour images; all are converted to colour"):
        assert load_split(str(folder), "train", cache=cache).image_shape == (3, 12, 12)   # the majority's mode
    (folder / "class01" / "grey.png").unlink()
    for s in SPLITS:
        (folder / f"{s}.txt").write_text("class00\n" if s != "val" else "\n")
    with pytest.raises(MtlMetaError) as e:
        load_split(str(folder), "train", cache=cache)
    _one_line(e, "val.txt is empty")
    (folder / "val.txt").write_text("class77\n")
    with pytest.raises(MtlMetaError) as e:
        load_split(str(folder), "train", cache=cache)
    _one_line(e, "'class77'")
    with pytest.raises(MtlMetaError) as e:
        load_split(str(tmp_path / "nowhere" / "x"), "train", cache=cache)
    _one_line(e, "does not exist")
    with pytest.raises(MtlMetaError) as e:
        load_split("omniglot-minimal", "train", data_root=tmp_path, channels=3)
    _one_line(e, "channels", "omniglot-minimal", "image_size, rotations")


def test_transforms_act_per_image_as_in_torchvision():
    from torchvision.transforms import RandomHorizontalFlip
    from mtl_meta.episodes import FewShotSplit
    ramp = np.tile(np.arange(6, dtype=np.uint8) * 40, (50, 1, 6, 1))   # left dark, right bright
    split = FewShotSplit(ramp, np.repeat(np.arange(5), 10), list("abcde"))
    torch.manual_seed(0)
    ep = EpisodeSampler(split, 5, 5, 5, seed=0, transform=RandomHorizontalFlip(0.5)).sample()
    flipped = (ep.support[:, 0, 0, 0] > ep.support[:, 0, 0, -1]).float()
    assert 0.2 < float(flipped.mean()) < 0.8   # about half of the episode's images, not all or none


def test_episodes_from_a_torchvision_image_folder(tmp_path):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import Compose, Resize, ToTensor
    from fixtures import write_image_folder
    from mtl_meta.episodes import split_dataset
    folder = write_image_folder(tmp_path / "imgs", classes=10, per_class=5)
    ds = ImageFolder(str(folder), transform=Compose([Resize(8), ToTensor()]))
    parts = split_dataset(ds, seed=0)
    from mtl_meta.episodes import class_split_of
    assert all(class_split_of(c) == s for s, p in parts.items() for c in p.class_names)   # by name and seed alone
    assert all(p.n_classes >= 2 for p in parts.values())
    assert set(parts["test"].class_names) <= set(ds.classes)
    ep = EpisodeSampler(parts["train"], ways=3, shots=2, queries=2, seed=0).sample()
    assert ep.support.shape == (6, 3, 8, 8) and ep.query.shape == (6, 3, 8, 8)
    # the episode's images are the data set's items of the episode's classes
    names = [parts["train"].class_names[c] for c in ep.classes.tolist()]
    x0, y0 = ds[[i for i, (_, y) in enumerate(ds.samples) if ds.classes[y] == names[0]][0]]
    assert ds.classes[y0] == names[0] and x0.shape == ep.support.shape[1:]


PLUGIN_DATASET = '''
import numpy as np
from mtl_meta.data import DatasetInfo, register_dataset
from mtl_meta.episodes import FewShotSplit

def load(split, root, cache=None, classes=6):
    g = np.random.default_rng({"train": 0, "val": 1, "test": 2}[split])
    labels = np.repeat(np.arange(classes), 5)
    return FewShotSplit(g.integers(0, 256, (len(labels), 1, 16, 16), dtype=np.uint8), labels,
                        [f"{split}{k}" for k in range(classes)])

register_dataset(DatasetInfo("toy-noise", "", "nothing", "a test", load=load, options=("classes",),
                             stats=lambda **_: ((0.5,), (0.25,)), uses_data_root=False))
'''


def test_a_plugin_data_set_is_seen_by_the_cli(run_cli, tmp_path):
    (tmp_path / "toy_data.py").write_text(PLUGIN_DATASET)
    env = {"MTL_META_PLUGINS": "toy_data", "MTL_META_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))}
    r = run_cli("data", "info", "--dataset", "toy-noise", env=env)
    assert r.returncode == 0, r.stderr
    assert "1x16x16" in r.stdout and r.stdout.count(" 6 ") >= 3
    r = run_cli("train", "--dataset", "toy-noise", "--method", "protonet", "--ways", "3", "--shots", "1",
                "--queries", "2", "--epochs", "1", "--episodes-per-epoch", "2", "--val-episodes", "2", "--val-queries", "2",
                "--out", str(tmp_path / "run"), "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metadata"]["dataset"] == "toy-noise" and summary["metadata"]["normalization"] == [[0.5], [0.25]]


def test_a_torchvision_image_folder_given_straight_to_a_sampler(tmp_path):
    "The issue's raw AttributeError ('ImageFolder' object has no attribute 'labels'): now episodes."
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor
    from fixtures import write_image_folder
    from mtl_meta.episodes import MetaBatchSampler
    ds = ImageFolder(str(write_image_folder(tmp_path / "imgs", classes=4, per_class=3)), transform=ToTensor())
    ep = EpisodeSampler(ds, ways=4, shots=1, queries=2, seed=0).sample()
    assert ep.support.shape == (4, 3, 12, 12) and sorted(ep.classes.tolist()) == [0, 1, 2, 3]
    assert MetaBatchSampler(ds, 2, 1, 1, meta_batch_size=2).split.class_names == ds.classes
    with pytest.raises(MtlMetaError) as e:
        EpisodeSampler(ds, ways=4, shots=2, queries=2)
    _one_line(e, "at most 3 keeps every class")


def test_importing_data_registers_every_built_in_data_set_and_each_part_its_own():
    "A fresh interpreter: the registry alone knows no data set; each part registers its own; `data` imports them all."
    code = ("import sys, mtl_meta.{0} as m, mtl_meta.datasets as r; "
            "print(sorted(r.DATASETS), hasattr(m, 'load_split'))")
    seen = {}
    for module in ("datasets", "benchmark_data", "folders", "data"):
        r = subprocess.run([sys.executable, "-c", code.format(module)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        seen[module] = r.stdout.strip()
    benchmarks = ['cifar-fs', 'fc100', 'mini-imagenet', 'omniglot', 'omniglot-minimal', 'sinusoid', 'tiered-imagenet']
    assert seen["datasets"] == "[] False"                # no name look-up where no data set is known
    assert seen["benchmark_data"] == f"{benchmarks} False"
    assert seen["folders"] == "['imagefolder'] False"
    assert seen["data"] == f"{sorted(benchmarks + ['imagefolder'])} True"
