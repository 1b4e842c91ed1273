"""The meta-learning baselines (mtl_meta.gbml): exact meta-gradients, heads against independent solvers,
the registry, and each method running inside the real Trainer."""
import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtl_meta.core import MtlMetaError
from mtl_meta.episodes import Episode
from mtl_meta.gbml import (ALGORITHMS, ANIL, FOMAML, MAML, MetaOptNetRR, MetaOptNetSVM, ProtoNet, R2D2,
                           crammer_singer_svm, make_algorithm, ridge_head, taxonomy_table)
from mtl_meta.testing import assert_fd, fd_check, param_grads, random_episode, tiny_body
from mtl_meta.train import TrainConfig, Trainer


@pytest.fixture(autouse=True)
def one_thread():
    "Tiny problems: one thread is fastest and immune to a busy machine."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- meta-gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: MAML(tiny_body(), ways=3, inner_lr=0.3, inner_steps=2),
    lambda: ANIL(tiny_body(), ways=3, inner_lr=0.5, inner_steps=3),
    lambda: ANIL(tiny_body(), ways=3, inner_lr=0.5, inner_steps=2, head_init="zero"),
    lambda: MetaOptNetSVM(tiny_body(), ways=3, C=0.5),
    lambda: MetaOptNetRR(tiny_body(), ways=3, lam=3.0),
    lambda: R2D2(tiny_body(), ways=3, lam=2.0, learn_lambda=True, scale=1.5, bias=0.2),
    lambda: ProtoNet(tiny_body(), ways=3),
], ids=["maml", "anil", "anil-zero-head", "metaoptnet-svm", "metaoptnet-rr", "r2d2", "protonet"])
def test_meta_gradient_matches_finite_differences(make):
    alg = make().double()
    assert_fd(fd_check(alg, random_episode(), seed=1), rtol=1e-5 if isinstance(alg, MetaOptNetSVM) else 1e-6)


def test_maml_with_zero_inner_steps_is_plain_training():
    ep = random_episode(seed=3)
    maml = MAML(tiny_body(), ways=3, inner_steps=0).double()
    plain = copy.deepcopy(maml)
    g = param_grads(maml, ep)
    plain.zero_grad(set_to_none=True)
    F.cross_entropy(plain.head(plain.body(ep.query)), ep.query_labels).backward()
    for k, p in plain.named_parameters():
        torch.testing.assert_close(g[k], p.grad, rtol=1e-12, atol=1e-14)


def test_first_order_maml_is_maml_with_detached_inner_gradients():
    ep = random_episode(seed=4)
    maml = MAML(tiny_body(), ways=3, inner_lr=0.2, inner_steps=3).double()
    fo = FOMAML(tiny_body(), ways=3, inner_lr=0.2, inner_steps=3).double()
    fo.load_state_dict(maml.state_dict())
    g_fo, g_so = param_grads(fo, ep), param_grads(maml, ep)
    net = copy.deepcopy(maml)  # three ordinary SGD steps, then the query gradient at the adapted weights
    for _ in range(3):
        gs = torch.autograd.grad(F.cross_entropy(net(ep.support), ep.support_labels), list(net.parameters()))
        with torch.no_grad():
            for p, gp in zip(net.parameters(), gs): p.sub_(0.2 * gp)
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(ep.query), ep.query_labels).backward()
    for k, p in net.named_parameters():
        torch.testing.assert_close(g_fo[k], p.grad, rtol=1e-10, atol=1e-12)
    assert max((g_fo[k] - g_so[k]).abs().max() for k in g_so) > 1e-3


def test_maml_updates_running_statistics_once_per_episode():
    maml = MAML(tiny_body(), ways=3, inner_lr=0.3, inner_steps=4).double()
    bn = maml.body[1]
    for i in range(3):
        maml.episode_loss(random_episode(seed=i))
    assert bn.num_batches_tracked.item() == 3


# -- heads against independent solvers ---------------------------------------------------------------

@pytest.mark.parametrize("ways,shots,d,C", [(5, 1, 16, 0.1), (5, 5, 40, 0.1), (4, 3, 20, 2.0)])
def test_svm_head_equals_liblinear(ways, shots, d, C):
    from sklearn.svm import LinearSVC
    rng = np.random.default_rng(ways * 100 + d)
    y = np.repeat(np.arange(ways), shots)
    x = np.maximum(rng.normal(size=(ways * shots, d)) + 0.5, 0)
    alpha = crammer_singer_svm(torch.from_numpy(x), torch.from_numpy(y), ways, C=C, jitter=0.0).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svc = LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=C, tol=1e-12, max_iter=200_000).fit(x, y)
    W = (x.T @ alpha).T
    assert np.abs(W - svc.coef_).max() <= 1e-6 * np.abs(svc.coef_).max()
    assert np.allclose(alpha.sum(1), 0, atol=1e-12) and (alpha <= C * np.eye(ways)[y] + 1e-12).all()


def test_svm_head_handles_singular_gram_matrix():
    "More support points than feature dimensions: the jittered dual is still solved to its KKT conditions."
    rng = np.random.default_rng(5)
    x = torch.from_numpy(np.maximum(rng.normal(size=(25, 6)) + 1.0, 0))
    y = torch.arange(5).repeat_interleave(5)
    alpha = crammer_singer_svm(x, y, 5, C=0.1)
    assert torch.isfinite(alpha).all()
    G = x @ x.T
    G = G + 1e-6 * G.diagonal().mean() * torch.eye(25, dtype=G.dtype)
    # objective no worse than at any of many random feasible points
    Y = F.one_hot(y, 5).double()
    obj = lambda a: 0.5 * torch.trace(a.T @ G @ a) - torch.trace(a.T @ Y)
    for _ in range(200):
        eta = torch.distributions.Dirichlet(torch.ones(5)).sample((25,)).double() * 0.1
        assert obj(alpha) <= obj(0.1 * Y - eta) + 1e-12


@pytest.mark.parametrize("n,d", [(6, 20), (20, 6)])
def test_ridge_head_equals_sklearn(n, d):
    from sklearn.linear_model import Ridge
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, d)), np.eye(4)[rng.integers(0, 4, n)]
    w = ridge_head(torch.from_numpy(x), torch.from_numpy(y), 0.9).numpy()
    ref = Ridge(alpha=0.9, fit_intercept=False, solver="cholesky").fit(x, y).coef_.T
    np.testing.assert_allclose(w, ref, atol=1e-10)


def test_r2d2_logits_equal_reconstruction():
    from sklearn.linear_model import Ridge
    ep = random_episode(seed=6)
    r2 = R2D2(tiny_body(), ways=3, lam=4.0, scale=2.5, bias=-0.1).double()
    with torch.no_grad():
        z = r2.body(torch.cat([ep.support, ep.query])).numpy()
    zs, zq = np.c_[z[:6], np.ones(6)], np.c_[z[6:], np.ones(6)]
    ref = Ridge(alpha=4.0, fit_intercept=False, solver="cholesky").fit(zs / np.sqrt(6), np.eye(3)[ep.support_labels] / np.sqrt(6))
    np.testing.assert_allclose(r2.query_logits(ep).detach().numpy(), 2.5 * ref.predict(zq) - 0.1, atol=1e-10)


def test_protonet_logits_are_negative_squared_distances():
    ep = random_episode(seed=7)
    proto = ProtoNet(tiny_body(), ways=3).double()
    with torch.no_grad():
        z = proto.body(torch.cat([ep.support, ep.query])).numpy()
    zs, zq, ys = z[:6], z[6:], ep.support_labels.numpy()
    protos = np.stack([zs[ys == k].mean(0) for k in range(3)])
    expected = -((zq[:, None, :] - protos[None]) ** 2).sum(-1)
    np.testing.assert_allclose(proto.query_logits(ep).detach().numpy(), expected, atol=1e-12)


# -- registry, taxonomy, errors ------------------------------------------------------------------------

def test_registry_builds_every_method_and_rejects_unknown_names_and_options():
    for key, cls in ALGORITHMS.items():
        assert type(make_algorithm(key, tiny_body(), n_classes=10, ways=3)) is cls and cls.name == key
    with pytest.raises(MtlMetaError, match=r"unknown method 'matching-net'; choose one of: mtl, mtl-tasks, maml, fomaml, anil, "
                                           r"metaoptnet-svm, metaoptnet-rr, r2d2, protonet"):
        make_algorithm("matching-net", tiny_body(), 10, 3)
    with pytest.raises(MtlMetaError, match=r"method protonet has no option\(s\) inner_steps"):
        make_algorithm("protonet", tiny_body(), 10, 3, inner_steps=2)


def test_taxonomy_is_generated_from_declarations():
    tax = taxonomy_table().set_index("method")
    for key, cls in ALGORITHMS.items():
        assert tuple(tax.loc[key, ["inner loop", "regulariser", "second order"]]) == \
            (cls.inner_loop, cls.regulariser, cls.second_order)
    assert tuple(tax.loc["anil", ["inner loop", "regulariser"]]) == ("last layer", "GD steps")
    assert tuple(tax.loc["mtl", ["inner loop", "regulariser"]]) == ("none", "joint heads")


def test_user_errors_are_one_sentence():
    with pytest.raises(MtlMetaError, match="needs query images"):
        ProtoNet(tiny_body(), ways=3).double().episode_loss(random_episode(queries=0))
    with pytest.raises(MtlMetaError, match="built for 5-way episodes but got a 3-way episode; build it with ways=3"):
        ANIL(tiny_body(), ways=5).double().episode_loss(random_episode())
    with pytest.raises(MtlMetaError, match="head_init must be 'learned' or 'zero'"):
        ANIL(tiny_body(), head_init="random")
    with pytest.raises(MtlMetaError, match="the SVM cost C must be positive"):
        MetaOptNetSVM(tiny_body(), C=0)
    with pytest.raises(MtlMetaError, match="pass feature_dim explicitly"):
        MAML(nn.Flatten())


def test_batched_episode_is_the_mean_over_its_episodes():
    alg = ProtoNet(tiny_body(bn=False), ways=3).double()
    e1, e2 = random_episode(seed=1), random_episode(seed=2)
    batch = Episode(*(torch.stack([getattr(e1, f), getattr(e2, f)]) for f in
                      ("support", "support_labels", "query", "query_labels", "classes")))
    loss, acc = alg.episode_loss(batch)
    (l1, a1), (l2, a2) = alg.episode_loss(e1), alg.episode_loss(e2)
    torch.testing.assert_close(loss, (l1 + l2) / 2)
    torch.testing.assert_close(acc, (a1 + a2) / 2)


# -- inside the real trainer ------------------------------------------------------------------------

class _Clusters:
    "A seeded episode sampler with a state_dict, as Trainer expects."
    def __init__(self, ways=3, shots=2, queries=3, seed=0, pool=None):
        self.means = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(7)) * 2
        self.ways, self.shots, self.queries, self.g = ways, shots, queries, torch.Generator().manual_seed(seed)
        self.pool = pool   # (T, ways) class tuples: episodes only from these tasks (the per-task-head MTL variant)

    def sample(self):
        if self.pool is not None:
            cls = self.pool[torch.randint(len(self.pool), (1,), generator=self.g).item()]
        else:
            cls = torch.randperm(8, generator=self.g)[: self.ways]
        def draw(k):
            lab = torch.arange(self.ways).repeat_interleave(k)
            return self.means[cls[lab]] + torch.randn(len(lab), 1, 4, 4, generator=self.g), lab
        (xs, ys), (xq, yq) = draw(self.shots), draw(self.queries)
        return Episode(xs, ys, xq, yq, cls)

    def state_dict(self): return {"g": self.g.get_state()}
    def load_state_dict(self, s): self.g.set_state(s["g"])


@pytest.mark.parametrize("name", list(ALGORITHMS))
@pytest.mark.parametrize("amp", [None, "bf16"])
def test_every_method_trains_in_the_trainer(name, amp):
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    body.out_dim = 64
    alg = make_algorithm(name, body, n_classes=8, ways=3)
    before = copy.deepcopy(alg.state_dict())
    cfg = TrainConfig(ways=3, shots=2, queries=3, meta_batch_size=2, episodes_per_epoch=4, epochs=1, lr=1e-3, amp=amp)
    st = Trainer(alg, _Clusters(pool=getattr(alg, "pool", None)), None, cfg).fit(resume=False)
    assert st.step == 2 and np.isfinite(st.history[-1]["train_loss"])
    changed = [k for k, v in alg.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any(k.startswith("body.0.") for k in changed)  # the body was trained
    assert alg.features(torch.randn(2, 1, 4, 4)).shape == (2, 64)


# -- ANIL composed from MAML's inner loop: numbers unchanged --------------------------------------------

def test_anil_matches_the_values_of_its_former_own_head_loop():
    """ANIL's inner loop is now `sgd_steps` on the head (shared with MAML). Its loss and meta-gradient on a fixed
    seeded episode equal those that the former hand-written head loop computed (commit 669a78b, stored in
    tests/data/anil_reference.json by running that commit's mtl_meta.gbml.ANIL on the same fixtures)."""
    import json
    from pathlib import Path
    ref = json.loads((Path(__file__).parent / "data" / "anil_reference.json").read_text())
    cases = {k: v for k, v in ref.items() if isinstance(v, dict)}
    assert set(cases) == {"learned-second-order", "zero-head", "first-order", "eval-test-steps"}
    for name, case in cases.items():
        anil = ANIL(tiny_body(ref["body_seed"]), ways=3, **case["options"]).double()
        anil.train(case["train"])
        loss, _ = anil.episode_loss(random_episode(seed=ref["episode_seed"]))
        loss.backward()
        g = {k: p.grad for k, p in anil.named_parameters()}
        assert abs(loss.item() - case["loss"]) <= 1e-10, name
        assert set(g) == set(case["grads"]), name
        for k, v in case["grads"].items():
            torch.testing.assert_close(g[k].flatten(), torch.tensor(v, dtype=torch.float64), rtol=0, atol=1e-10)
