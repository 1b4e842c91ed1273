"""The theory modules' claims, recomputed: the envelope (first-order) equivalence, the ANIL/joint
equivalence without a split, the readout's 1/(L+1) share of the NTK, and the two gap terms."""
import math

import numpy as np
import torch

from mtl_meta.formulation import anil_gradient, bilevel_gradient, joint_gradient, relative_gap
from mtl_meta.ntk import depth_study, lambda_tau_study, last_layer_share, relative_gap as rel, synthetic_family, \
    meta_test_predictions
from mtl_meta.report import theory_split_markdown


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


# --- claim 2 with a support/query split, and finite width (issue 17) ---

from mtl_meta.ntk import (CentredMLP, Kernel, TaskFamily, empirical_kernels, family_kernels, predictions_from_kernels,
                          query_points, split_gap_study, split_gap_terms)


def _jacobian(net, x, task=None):
    "Per-point gradients of the network's raw output w.r.t. every parameter (rows), by autograd."
    params = [*net.Ws, net.heads]
    rows = []
    for i in range(len(x)):
        t = None if task is None else torch.as_tensor(task[i:i + 1])
        grads = torch.autograd.grad(net.raw(torch.as_tensor(x[i:i + 1]), t).sum(), params)
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows).numpy()


def _inner_operator(k, s, q, lam, tau=1):
    "M = K_qs K_ss^-1 (I - (I - lam K_ss)^tau), written out independently of the package."
    kss = k[np.ix_(s, s)]
    return k[np.ix_(q, s)] @ np.linalg.inv(kss) @ (np.eye(len(s)) - np.linalg.matrix_power(np.eye(len(s)) - lam * kss, tau))


def test_closed_forms_match_gradient_descent_on_the_linearised_network():
    """The function-space closed forms (joint, MTL's block kernel, ANIL's meta-NTK with a split) against gradient
    descent in parameter space on the linearised finite network, and at convergence against numpy's min-norm lstsq."""
    fam = synthetic_family(T=3, n=8, n_support=4, n_query=6, seed=2)
    X, Y, task_of, Xs, Ys, Xq = fam.X, fam.Y, fam.task_of, fam.Xs, fam.Ys, fam.Xq
    n, ns = len(X), len(Xs)
    Z = np.vstack([X, Xs, Xq])
    ev = np.arange(n, len(Z))
    width, lam = 16, 0.3
    one = CentredMLP(3, width, 2, heads=1, seed=5)
    many = CentredMLP(3, width, 2, heads=3, seed=5)          # same body and head init, one head per task
    J1 = _jacobian(one, Z)                                   # shared head: columns [body | head]
    Jm = _jacobian(many, X, task_of)                         # per-task heads: the block structure comes from autograd
    nb = J1.shape[1] - width
    kern = Kernel(theta=J1 @ J1.T, k=J1[:, nb:] @ J1[:, nb:].T)
    k = kern.k
    fin = lambda f: f[ns:] + k[np.ix_(ev[ns:], ev[:ns])] @ np.linalg.solve(k[np.ix_(ev[:ns], ev[:ns])], Ys - f[:ns])
    # the linearised models' training problems: rows A delta ~ c, and how each reads its test function
    tasks = [(np.flatnonzero(task_of == i)[:4], np.flatnonzero(task_of == i)[4:]) for i in range(3)]
    Ms = [_inner_operator(k, s, q, lam) for s, q in tasks]
    anil_A = np.vstack([J1[q] - M @ J1[s] for (s, q), M in zip(tasks, Ms)])
    anil_c = np.concatenate([Y[q] - M @ Y[s] for (s, q), M in zip(tasks, Ms)])
    body_only = np.concatenate([J1[ev, :nb], np.zeros((len(ev), Jm.shape[1] - nb))], 1)   # MTL: read through w0
    problems = {"joint": (J1[:n], Y, J1[ev]), "mtl": (Jm, Y, body_only), "anil": (anil_A, anil_c, J1[ev])}
    steps = 40
    for method, (A, c, read) in problems.items():
        eta = 0.5 / np.linalg.eigvalsh(A @ A.T).max()
        delta = np.zeros(A.shape[1])
        for _ in range(steps):
            delta -= eta * A.T @ (A @ delta - c)
        closed = predictions_from_kernels(kern, fam, lam=lam, tau=1, split=method == "anil", eta=eta, steps=steps)
        assert rel(closed[method], fin(read @ delta)) < 1e-8, method
        converged = predictions_from_kernels(kern, fam, lam=lam, tau=1, split=method == "anil")
        min_norm = np.linalg.lstsq(A, c, rcond=None)[0]
        assert rel(converged[method], fin(read @ min_norm)) < 1e-6, method


def test_empirical_kernels_match_the_jacobian_and_the_infinite_width_limit():
    net = CentredMLP(3, 20, 3, seed=1)
    z = np.random.default_rng(0).standard_normal((6, 3))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    J = _jacobian(net, z)
    emp = empirical_kernels(net, z)
    assert np.allclose(emp.theta, J @ J.T) and np.allclose(emp.k, J[:, -20:] @ J[:, -20:].T)
    th_inf = family_kernels(TaskFamily(X=z, Y=None, task_of=None, Xs=z[:0], Ys=None, Xq=z[:0], Yq=None), 2).theta
    errs = [np.mean([np.linalg.norm(empirical_kernels(CentredMLP(3, w, 2, seed=s), z).theta - th_inf) / np.linalg.norm(th_inf)
                     for s in range(4)]) for w in (32, 2048)]          # mean over seeds: width^-1/2 predicts 8x
    assert errs[1] < errs[0] / 3, errs


def test_split_gap_decomposition():
    fam = synthetic_family(seed=3)
    kern = family_kernels(fam, 2)
    # ANIL with lambda = 0 is joint training on the query halves (its outer loss sees only those points)
    a0 = predictions_from_kernels(kern, fam, lam=0.0, split=True)["anil"]
    jq = predictions_from_kernels(kern, fam, train_idx=query_points(fam.task_of))["joint"]
    assert rel(a0, jq) < 1e-8
    rows = split_gap_terms(kern, fam, (0.0, 0.003, 0.01))
    assert rows[0]["inner_loop_term"] == 0 and rows[0]["gap_mtl_on_query"] == rows[0]["depth_term"]
    assert 0.8 < np.polyfit(np.log([0.003, 0.01]), np.log([r["inner_loop_term"] for r in rows[1:]]), 1)[0] < 1.2
    # the triangle inequality bounds the gap by its three terms
    for r in rows:
        assert r["gap"] <= r["inner_loop_term"] + r["depth_term"] + r["data_term"] + 1e-12
    study = split_gap_study(fam, depths=(2, 16, 64), lambda_taus=(0.0, 0.1))
    at0 = [r for r in study["rows"] if r["lambda_tau"] == 0]
    assert at0[0]["depth_term"] > at0[1]["depth_term"] > at0[2]["depth_term"] and study["depth_term_slope"] < -0.5
    assert at0[-1]["data_term"] > 2 * at0[-1]["depth_term"]          # what remains at depth 64 is the split's data
    md = theory_split_markdown({"split_gap": {"synthetic": study}})
    assert theory_split_markdown({}) == [] and sum(l.startswith("| synthetic | 64") for l in md) == 2


def test_theory_md_is_the_report_of_the_committed_theory_run(tmp_path):
    "`figures/theory.md` is, byte for byte, what `report_theory` writes from the committed theory run's results."
    import json
    from pathlib import Path
    from mtl_meta.report import report_theory
    figures = Path(__file__).parent.parent / "figures"
    report_theory([json.loads((figures / "runs" / "theory" / "results.json").read_text())], tmp_path)
    assert (tmp_path / "theory.md").read_bytes() == (figures / "theory.md").read_bytes()
