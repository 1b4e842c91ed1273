"""Data loaders on the real Omniglot minimal sets and on fixtures written in each benchmark's real
on-disk format; episodes drawn from them; every bad input's one-line error."""
import io
import os
import pickle
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
    _one_line(e, "10 shots + 15 queries", "only 20 images")


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
