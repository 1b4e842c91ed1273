"""Small data sets written in the benchmarks' real on-disk formats (random pixels), for tests."""
import pickle

import numpy as np

from mtl_meta.data import CIFAR_FS_SPLIT, FC100_SPLIT


def write_cifar100(root, rng, per_class=3, test_per_class=1):
    "cifar-100-python/{train,test,meta} as the official python pickles (protocol 2, bytes keys)."
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine_names = sorted({c for v in CIFAR_FS_SPLIT.values() for c in v})
    coarse_names = sorted({c for v in FC100_SPLIT.values() for c in v})
    coarse_of = {n: coarse_names[i % 20] for i, n in enumerate(fine_names)}   # made up but consistent
    for part, n in (("train", per_class), ("test", test_per_class)):
        fine = np.repeat(np.arange(100), n)
        coarse = [coarse_names.index(coarse_of[fine_names[f]]) for f in fine]
        data = rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
        d = {b"filenames": [b"x.png"] * len(fine), b"batch_label": b"x", b"fine_labels": list(fine),
             b"coarse_labels": coarse, b"data": data}
        (folder / part).write_bytes(pickle.dumps(d, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [n.encode() for n in fine_names],
                                                b"coarse_label_names": [n.encode() for n in coarse_names]}, protocol=2))
    return fine_names, coarse_of


def write_mini_imagenet(root, rng, classes=(8, 5, 5), per_class=20):
    "mini-imagenet/miniImageNet_category_split_*.pkl (MetaOptNet/RFS layout)."
    folder = root / "mini-imagenet"
    folder.mkdir(parents=True)
    names = {"train": "miniImageNet_category_split_train_phase_train.pkl", "val": "miniImageNet_category_split_val.pkl",
             "test": "miniImageNet_category_split_test.pkl"}
    first = 0
    for (split, f), k in zip(names.items(), classes):
        labels = np.repeat(np.arange(first, first + k), per_class)
        x = rng.integers(0, 256, (len(labels), 84, 84, 3), dtype=np.uint8)
        cat = {f"n{i:08d}": i for i in range(first, first + k)}
        (folder / f).write_bytes(pickle.dumps({"data": x, "labels": list(labels), "catname2label": cat}, protocol=2))
        first += k


def write_tiered_imagenet(root, rng, classes=(8, 5, 5), per_class=20):
    "tiered-imagenet/{split}_images.npz + {split}_labels.pkl (MetaOptNet/RFS layout)."
    folder = root / "tiered-imagenet"
    folder.mkdir(parents=True)
    for split, k in zip(("train", "val", "test"), classes):
        specific = np.repeat(np.arange(k), per_class)
        np.savez(folder / f"{split}_images.npz", images=rng.integers(0, 256, (len(specific), 84, 84, 3), dtype=np.uint8))
        labels = {"label_specific": specific, "label_general": specific // 2,
                  "label_specific_str": [f"c{i}" for i in range(k)], "label_general_str": [f"g{i}" for i in range(k)]}
        (folder / f"{split}_labels.pkl").write_bytes(pickle.dumps(labels))


def write_image_folder(root, classes=8, per_class=6, size=12, mode="RGB", seed=0):
    "root/<class>/<i>.png: `classes` classes of `per_class` images, each class a noisy version of its own pattern."
    from PIL import Image
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"class{k:02d}").mkdir(parents=True, exist_ok=True)
        pattern = rng.integers(0, 256, (size, size, 3) if mode == "RGB" else (size, size))
        for i in range(per_class):
            noisy = np.clip(pattern + rng.normal(0, 30, pattern.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy, mode).save(root / f"class{k:02d}" / f"{i}.png")
    return root
