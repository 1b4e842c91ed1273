"""The theory modules' claims, recomputed: the envelope (first-order) equivalence, the ANIL/joint
equivalence without a split, the readout's 1/(L+1) share of the NTK, and the two gap terms."""
import math

import numpy as np
import torch

from mtl_meta.formulation import anil_gradient, bilevel_gradient, joint_gradient, relative_gap
from mtl_meta.ntk import depth_study, lambda_tau_study, last_layer_share, relative_gap as rel, synthetic_family, \
    meta_test_predictions


def _tasks(T=6, ways=3, n=18, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(T):
        means = 2 * torch.randn(ways, dim, generator=g, dtype=torch.float64)
        y = torch.arange(n) % ways
        out.append((means[y] + torch.randn(n, dim, generator=g, dtype=torch.float64), y, ways))
    return out


def test_envelope_equivalence_and_split_gap():
    tasks = _tasks()
    theta = torch.randn(5, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64) / math.sqrt(5)
    for head in ("ridge", "logistic"):
        through = bilevel_gradient(theta, tasks, head, lam=0.5, through_solver=True)
        detached = bilevel_gradient(theta, tasks, head, lam=0.5, through_solver=False)
        assert relative_gap(through, detached) < 1e-6
        split_gap = relative_gap(bilevel_gradient(theta, tasks, head, 0.5, split=True),
                                 bilevel_gradient(theta, tasks, head, 0.5, split=True, through_solver=False))
        assert split_gap > 1e-2


def test_anil_gradient_gap_is_linear_in_lambda_tau():
    tasks = _tasks()
    theta = torch.randn(5, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64) / math.sqrt(5)
    w0 = torch.randn(12, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) / 4
    g0 = joint_gradient(theta, tasks, w0)
    lt = [0.0003, 0.001, 0.003, 0.01]
    gaps = [relative_gap(g0, anil_gradient(theta, tasks, w0, x, 1)) for x in lt]
    slope = np.polyfit(np.log(lt), np.log(gaps), 1)[0]
    assert 0.8 < slope < 1.2, slope


def test_ntk_claims():
    x = np.random.default_rng(0).standard_normal((5, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for L in (1, 3, 6):
        assert np.allclose(np.diag(last_layer_share(x, L)), 1 / (L + 1))
    fam = synthetic_family(seed=1)
    p = meta_test_predictions(fam, 3, lam=0.2, tau=2)
    assert rel(p["anil"], p["joint"]) < 1e-8                  # no split: ANIL == joint training
    d = depth_study(fam, depths=(1, 4, 16, 64))
    g = list(d["gaps"].values())
    assert all(a > b for a, b in zip(g, g[1:])) and g[-1] < g[0] / 5
    rows = lambda_tau_study(fam, depth=4, values=((0.01, 1), (0.03, 1), (0.03, 3)))
    gaps = [r["gap_to_lambda_tau_0"] for r in rows]
    assert gaps[0] < gaps[1] < gaps[2] and gaps[0] > 0
