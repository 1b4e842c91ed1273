"""Episodes at the speed of a DataLoader (issue 40): a lazily decoded image folder and a batch sampler over any
map-style Dataset, checked against the cached in-memory route they replace for large folders."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fixtures import write_image_folder
from mtl_meta.core import MtlMetaError


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))
    return write_image_folder(tmp_path / "imgs", classes=12, per_class=5, size=16)


def test_a_lazy_folder_trains_from_a_dict_of_splits_and_decodes_only_what_episodes_use(folder, tmp_path):
    from mtl_meta import api
    from mtl_meta.data import LazyImageFolder
    splits = {s: LazyImageFolder(folder, s) for s in ("train", "val", "test")}
    decoded = []
    for s in splits.values():
        s.plan.decode = (lambda f, _d=s.plan.decode: decoded.append(f) or _d(f))
    summary = api.train("protonet", dataset=splits, backbone="conv4", out_dir=tmp_path / "run", ways=2, shots=1,
                        queries=2, epochs=1, episodes_per_epoch=2, val_episodes=2, val_queries=2)
    assert summary["steps"] == 2
    # 2 training episodes of 2 x 3 images, 2 validation episodes of 2 x 3, plus one probe per split for the shape
    assert 0 < len(decoded) <= 2 * 6 + 2 * 6 + 3
    res = api.evaluate(tmp_path / "run", dataset=splits, body=None, ways=2, shots=1, queries=2, episodes=2)
    assert 0 <= res.mean <= 1


def test_episodes_through_a_dataloader_with_workers_match_their_indices(folder):
    from mtl_meta.data import LazyImageFolder
    from mtl_meta.episodes import EpisodeBatchSampler
    ds = LazyImageFolder(folder, "train")
    bs = EpisodeBatchSampler(ds, ways=3, shots=2, queries=1, episodes=5, seed=4)
    with_workers = list(DataLoader(ds, batch_sampler=bs, collate_fn=bs.collate, num_workers=2))
    inline = list(DataLoader(ds, batch_sampler=bs, collate_fn=bs.collate))
    assert len(with_workers) == 5
    for a, b, idx in zip(with_workers, inline, bs):
        assert torch.equal(a.support, b.support) and torch.equal(a.classes, b.classes)
        expect = torch.stack([ds[i][0] for i in idx]).reshape(3, 3, *a.support.shape[1:])
        assert torch.equal(a.support, expect[:, :2].reshape(6, *a.support.shape[1:]))
        assert torch.equal(a.query, expect[:, 2:].reshape(3, *a.query.shape[1:]))
        assert a.classes.tolist() == [ds.targets[idx[k * 3]] for k in range(3)]
        assert len(set(a.classes.tolist())) == 3
    with pytest.raises(MtlMetaError, match="only 7 classes"):
        EpisodeBatchSampler(ds, ways=8, shots=1)
