"Test-time adaptation on frozen features: solvers agree, closed forms are right, evaluate summarises."
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mtl_meta.adapt import (ADAPTERS, Batching, EvalResult, evaluate, finetune_head, logreg_sklearn, logreg_torch,
                            mean_ci95, nearest_centroid, ridge)
from mtl_meta.core import MtlMetaError
from mtl_meta.episodes import Episode

torch.set_num_threads(1)


def random_episodes(B, ways, shots, queries, d, spread=1.0, seed=0):
    "Clustered features: class means on the sphere, isotropic noise of std `spread`, L2-normalised."
    g = torch.Generator().manual_seed(seed)
    means = F.normalize(torch.randn(B, ways, d, generator=g), dim=-1) * 3
    ys = torch.arange(ways).repeat_interleave(shots).expand(B, -1)
    yq = torch.arange(ways).repeat_interleave(queries).expand(B, -1)
    pick = lambda y: torch.gather(means, 1, y[..., None].expand(-1, -1, d))
    zs = pick(ys) + spread * torch.randn(B, ways * shots, d, generator=g)
    zq = pick(yq) + spread * torch.randn(B, ways * queries, d, generator=g)
    return F.normalize(zs, dim=-1), ys, F.normalize(zq, dim=-1), yq


@pytest.mark.parametrize("shots,d,spread", [(1, 64, 3.0), (5, 64, 3.0), (5, 16, 1.0), (1, 200, 10.0)])
def test_logreg_torch_matches_sklearn(shots, d, spread):
    zs, ys, zq, _ = random_episodes(12, 5, shots, 10, d, spread)
    a, b = logreg_sklearn(zs, ys, zq, 5), logreg_torch(zs, ys, zq, 5)
    assert a.shape == b.shape == (12, 50, 5)
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() >= 0.99
    assert torch.allclose(a.softmax(-1), b.softmax(-1), atol=2e-3)


def test_logreg_torch_solves_sklearn_objective_exactly():
    # against a tightly converged scikit-learn fit the two agree to ~1e-6 for every C (with sklearn's
    # default tol=1e-4 they differ by up to ~0.02 in probability at C=100: that is sklearn stopping early)
    from sklearn.linear_model import LogisticRegression
    zs, ys, zq, yq = random_episodes(1, 3, 4, 5, 8, 1.0, seed=3)
    for C in (0.1, 3.0, 100.0):
        clf = LogisticRegression(C=C, tol=1e-12, max_iter=100000).fit(zs[0].double().numpy(), ys[0].numpy())
        p = torch.from_numpy(clf.predict_proba(zq[0].double().numpy())).float()
        b = logreg_torch(zs[0], ys[0], zq[0], 3, C=C)
        assert b.shape == (15, 3)
        assert torch.allclose(p, b.softmax(-1), atol=1e-4)
    assert logreg_sklearn(zs[0], ys[0], zq[0], 3).shape == (15, 3)


def test_logreg_torch_intercept_is_unpenalised():
    # one feature constant zero: only the intercept can separate class frequencies; with a huge
    # penalty on W the fitted class probabilities must still match the empirical frequencies
    zs = torch.zeros(1, 4, 2)
    ys = torch.tensor([[0, 0, 0, 1]])
    p = logreg_torch(zs, ys, zs, 2, C=1e-3).softmax(-1)[0, 0]
    assert torch.allclose(p, torch.tensor([0.75, 0.25]), atol=1e-3)


def test_ridge_closed_form_both_branches():
    g = torch.Generator().manual_seed(0)
    for n, d in ((30, 5), (6, 40)):
        zs, zq = torch.randn(2, n, d, generator=g), torch.randn(2, 7, d, generator=g)
        ys = torch.randint(0, 3, (2, n), generator=g)
        X = torch.cat([zs.double(), torch.ones(2, n, 1, dtype=torch.float64)], -1)
        Xq = torch.cat([zq.double(), torch.ones(2, 7, 1, dtype=torch.float64)], -1)
        Y = F.one_hot(ys, 3).double()
        W = torch.linalg.solve(X.transpose(1, 2) @ X + 0.5 * torch.eye(d + 1, dtype=torch.float64),
                               X.transpose(1, 2) @ Y)
        assert torch.allclose(ridge(zs, ys, zq, 3, lam=0.5).double(), Xq @ W, atol=1e-4)


def test_centroid_and_finetune_classify_separable_data():
    zs, ys, zq, yq = random_episodes(4, 5, 5, 10, 32, 0.5)
    for fn, kw in ((nearest_centroid, {}), (nearest_centroid, {"metric": "cosine"}), (finetune_head, {})):
        acc = (fn(zs, ys, zq, 5, **kw).argmax(-1) == yq).float().mean()
        assert acc > 0.95, (fn.__name__, kw, acc)
    with pytest.raises(MtlMetaError):
        nearest_centroid(zs, ys, zq, 5, metric="manhattan")


def test_nearest_centroid_euclidean_is_prototype_rule():
    zs = torch.tensor([[0., 0.], [0., 2.], [10., 0.]])
    ys = torch.tensor([0, 0, 1])
    scores = nearest_centroid(zs, ys, torch.tensor([[0., 1.], [9., 0.]]), 2)
    assert torch.allclose(scores, torch.tensor([[0., -101.], [-82., -1.]]))


def test_mean_ci95():
    m, h = mean_ci95([0.5, 0.7, 0.9, 0.7])
    assert m == pytest.approx(0.7)
    assert h == pytest.approx(1.96 * np.std([0.5, 0.7, 0.9, 0.7], ddof=1) / 2)
    assert math.isnan(mean_ci95([1.0])[1])
    with pytest.raises(MtlMetaError):
        mean_ci95([])


class FakeSampler:
    "Images are their own features: (B, n, d, 1, 1) tensors, embedded by flattening."
    def __init__(self, ways=5, shots=1, queries=6, d=16, spread=0.5):
        self.args, self.calls, self.seed = (ways, shots, queries, d, spread), [], 0

    def sample_batch(self, B):
        ways, shots, queries, d, spread = self.args
        self.calls.append(B)
        self.seed += 1
        zs, ys, zq, yq = random_episodes(B, ways, shots, queries, d, spread, seed=self.seed)
        return Episode(zs[..., None, None], ys.clone(), zq[..., None, None], yq.clone(),
                       torch.arange(ways).expand(B, -1).clone())


@pytest.mark.parametrize("adapt", list(ADAPTERS))
def test_evaluate_every_adapter(adapt):
    sampler = FakeSampler()
    res = evaluate(lambda x: x.flatten(1), sampler, adapt=adapt, episodes=23, batching=Batching(batch_size=10))
    assert isinstance(res, EvalResult)
    assert res.episodes == 23 and len(res.accuracies) == 23 and sampler.calls == [10, 10, 3]
    assert all(0.0 <= a <= 1.0 for a in res.accuracies)
    assert res.mean > 0.8 and res.ci95 >= 0 and res.seconds > 0
    d = res.to_dict()
    assert d["adapt"] == adapt and d["mean"] == res.mean and len(d["accuracies"]) == 23


def test_evaluate_errors_are_one_line():
    f = lambda x: x.flatten(1)
    with pytest.raises(MtlMetaError) as e:
        evaluate(f, FakeSampler(), adapt="svm", episodes=5)
    assert "svm" in str(e.value) and "logreg" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MtlMetaError):
        evaluate(f, FakeSampler(), episodes=0)


def test_torch_logreg_matches_sklearn_on_real_features(omniglot_root):
    data = pytest.importorskip("mtl_meta.data")
    from mtl_meta.episodes import EpisodeSampler
    from mtl_meta.models import Conv4
    split = data.load_split("omniglot-minimal", "test", data_root=omniglot_root)
    torch.manual_seed(0)
    body = Conv4(1, 28).eval()
    for shots in (1, 5):
        ep = EpisodeSampler(split, 5, shots, 5, seed=shots).sample_batch(20)
        with torch.no_grad():
            zs = F.normalize(body(ep.support.flatten(0, 1)).reshape(20, 5 * shots, -1), dim=-1)
            zq = F.normalize(body(ep.query.flatten(0, 1)).reshape(20, 25, -1), dim=-1)
        a = logreg_sklearn(zs, ep.support_labels, zq, 5).argmax(-1)
        b = logreg_torch(zs, ep.support_labels, zq, 5).argmax(-1)
        assert (a == b).float().mean() >= 0.98


def _image_split(n_classes=12, per_class=8, seed=0):
    from mtl_meta.episodes import FewShotSplit
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_classes * per_class, 1, 8, 8), dtype=np.uint8)
    # class-dependent brightness so that the features carry signal
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.clip(images // 2 + (labels * 10)[:, None, None, None], 0, 255).astype(np.uint8)
    return FewShotSplit(images, labels, [f"c{i}" for i in range(n_classes)], "tiny")


@pytest.mark.parametrize("adapt", ["logreg-torch", "centroid"])
def test_embedding_the_split_once_gives_the_same_episodes_and_accuracies(adapt):
    from mtl_meta.episodes import EpisodeSampler
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten()).eval()
    split = _image_split()
    calls = []
    def features(x):
        calls.append(len(x))
        return body(x)
    runs = {}
    for embed in (False, True):
        calls.clear()
        sampler = EpisodeSampler(split, ways=5, shots=1, queries=3, seed=7)
        runs[embed] = evaluate(features, sampler, adapt=adapt, episodes=30, batching=Batching(batch_size=7, embed_split=embed))
        runs[embed, "images"] = sum(calls)
    assert runs[True].accuracies == pytest.approx(runs[False].accuracies, abs=1e-9)
    assert runs[True, "images"] == len(split) and runs[False, "images"] == 30 * 5 * 4


def test_split_embedding_is_automatic_only_when_valid_and_cheaper():
    from mtl_meta.adapt import _can_embed_split
    from mtl_meta.data import BatchAugment
    from mtl_meta.episodes import EpisodeSampler
    split = _image_split()  # 96 images; an episode of 5 x 4 images embeds 20
    sampler = EpisodeSampler(split, ways=5, shots=1, queries=3)
    assert _can_embed_split(sampler, episodes=10) and not _can_embed_split(sampler, episodes=4)
    sampler.transform = BatchAugment(padding=0, jitter=0, flip=False)
    assert _can_embed_split(sampler, episodes=10)
    sampler.transform = BatchAugment(padding=2, jitter=0, flip=False)   # random crops: features differ per draw
    assert not _can_embed_split(sampler, episodes=10)
