"""The fast paths of the trainer change the speed, not the result: prefetching is bit-for-bit the same run
(also across a crash and resume), one forward per meta-batch gives the accumulated per-episode gradient."""
import numpy as np
import pytest
import torch

from mtl_meta import api
from mtl_meta.core import MtlMetaError
from mtl_meta.episodes import FewShotSplit, MetaBatchSampler
from mtl_meta.models import make_backbone
from mtl_meta.mtl import MTL
from mtl_meta.train import TrainConfig, Trainer, load_checkpoint

SMALL = dict(dataset="omniglot-minimal", backbone="conv4", ways=5, shots=1, queries=2, train_ways=10,
             meta_batch_size=2, episodes_per_epoch=8, val_episodes=5, lr=3e-3, head_lr=0.1, seed=3)


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _final(out):
    ckpt = load_checkpoint(out / "checkpoint.pt")
    return ckpt["algorithm"], [(h["step"], h["train_loss"], h["train_acc"], h["val_acc"]) for h in ckpt["state"]["history"]]


def test_prefetch_is_bit_for_bit_the_same_run(omniglot_root, tmp_path):
    runs = {}
    for p in (0, 2):
        s = api.train("mtl", out_dir=tmp_path / f"p{p}", data_root=omniglot_root, max_steps=8, prefetch=p,
                      **{k: v for k, v in SMALL.items() if k not in ("dataset", "backbone")})
        assert s["steps"] == 8
        runs[p] = _final(tmp_path / f"p{p}")
    assert _weights_equal(runs[0][0], runs[2][0])
    assert runs[0][1] == runs[2][1]
    # the checkpoint holds the sampler state of the next episode an update uses, whatever was drawn ahead
    a, b = (load_checkpoint(tmp_path / f"p{p}" / "checkpoint.pt") for p in (0, 2))
    assert a["train_sampler"] == b["train_sampler"] and a["config"]["prefetch"] == 0 and b["config"]["prefetch"] == 2


def test_resume_with_prefetch_continues_the_same_run(omniglot_root, tmp_path):
    from mtl_meta.train import Trainer as T
    kw = {k: v for k, v in SMALL.items() if k not in ("dataset", "backbone")}
    api.train("mtl", out_dir=tmp_path / "ref", data_root=omniglot_root, max_steps=12, checkpoint_every=3, **kw)

    class Crash(Exception):
        pass
    original = T._loop
    def crashing_loop(self, bar):   # dies one update after the checkpoint at step 6, while episodes are drawn ahead
        def hook(tr):
            if tr.state.step == 7:
                raise Crash()
        self.on_step = hook
        return original(self, bar)
    T._loop = crashing_loop
    try:
        with pytest.raises(Crash):
            api.train("mtl", out_dir=tmp_path / "run", data_root=omniglot_root, max_steps=12, checkpoint_every=3,
                      prefetch=3, **kw)
    finally:
        T._loop = original
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["state"]["step"] == 6
    api.train("mtl", out_dir=tmp_path / "run", data_root=omniglot_root, max_steps=12, checkpoint_every=3, prefetch=1, **kw)
    ref, run = _final(tmp_path / "ref"), _final(tmp_path / "run")
    assert _weights_equal(ref[0], run[0]) and ref[1] == run[1]


def _mtl_trainer(one_forward: bool, meta_batch: int = 3):
    rng = np.random.default_rng(0)
    split = FewShotSplit(rng.integers(0, 256, (12 * 6, 1, 28, 28), dtype=np.uint8), np.repeat(np.arange(12), 6),
                         [str(i) for i in range(12)])
    torch.manual_seed(0)
    body = make_backbone("conv4", in_channels=1, image_size=28)
    sampler = MetaBatchSampler(split, 4, 2, 2, meta_batch_size=meta_batch, seed=1)
    cfg = TrainConfig(ways=4, shots=2, queries=2, meta_batch_size=meta_batch, one_forward=one_forward)
    return Trainer(MTL(body, n_classes=12, ways=4), sampler, None, cfg)


def test_one_forward_gives_the_accumulated_per_episode_gradient():
    per_episode, one = _mtl_trainer(False), _mtl_trainer(True)
    for t in (per_episode, one):
        t.optimizer.step = lambda: None   # keep the weights: compare gradients and running statistics
    la, aa = per_episode.train_step()
    lb, ab = one.train_step()
    assert per_episode.state.images == one.state.images == 3 * 4 * 4
    assert lb == pytest.approx(la, rel=1e-5) and ab == pytest.approx(aa, abs=1e-6)
    pa, pb = dict(per_episode.algorithm.named_parameters()), dict(one.algorithm.named_parameters())
    for k in pa:
        assert torch.allclose(pa[k].grad, pb[k].grad, rtol=1e-4, atol=1e-6), k
    for (k, a), b in zip(per_episode.algorithm.state_dict().items(), one.algorithm.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), k   # running mean/var, batches tracked
    # without per-episode statistics one big batch gives another gradient: the equality above is not trivial
    plain = _mtl_trainer(True)
    plain.optimizer.step = lambda: None
    plain._use_one_forward = lambda m: False
    eps = plain.train_sampler.sample_step()
    plain.algorithm.train(); plain.optimizer.zero_grad()
    loss, _ = plain.algorithm.episode_loss(plain._prepare_batch(eps))
    loss.backward()
    w = "body.0.weight"
    assert not torch.allclose(dict(plain.algorithm.named_parameters())[w].grad, pa[w].grad, rtol=1e-3, atol=1e-5)


def test_one_forward_leaves_other_methods_and_single_episodes_alone():
    t = _mtl_trainer(True, meta_batch=1)
    assert not t._use_one_forward(1)
    assert t._use_one_forward(2)
    t.algorithm.supports_one_forward = False
    assert not t._use_one_forward(2)


def test_bad_prefetch_is_a_one_line_error():
    with pytest.raises(MtlMetaError, match="prefetch must be 0 \\(off\\) or a positive number of steps, got -1"):
        TrainConfig(prefetch=-1)
