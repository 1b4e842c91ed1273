"""Test-time adaptation cost: the paper's scikit-learn logistic regression, one fit per episode,
against the batched torch solver of the same problem (`mtl_meta.adapt.logreg_torch`), over 600
5-way episodes (1-shot and 5-shot, 15 queries per class) of frozen features: Conv-4 features of
the real Omniglot minimal test alphabets (64-d, an untrained body) and clustered random features
of ResNet-12's width (640-d). Prints wall-clock, speedup and the accuracy difference.

    python benchmarks/bench_adapt.py [--episodes 600] [--batch 100] [--threads 2]
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mtl_meta.adapt import logreg_sklearn, logreg_torch
from mtl_meta.data import load_split
from mtl_meta.episodes import EpisodeSampler
from mtl_meta.models import Conv4

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402  (the one-line no-data stop)


def omniglot_features(shots, episodes):
    torch.manual_seed(0)
    body = Conv4(1, 28).eval()
    sampler = EpisodeSampler(load_split("omniglot-minimal", "test"), 5, shots, 15, seed=1)
    ep = sampler.sample_batch(episodes)
    with torch.no_grad():
        zs = body(ep.support.flatten(0, 1)).reshape(episodes, -1, 64)
        zq = body(ep.query.flatten(0, 1)).reshape(episodes, -1, 64)
    return F.normalize(zs, dim=-1), ep.support_labels, F.normalize(zq, dim=-1), ep.query_labels


def clustered_features(shots, episodes, d=640, spread=4.0):
    g = torch.Generator().manual_seed(0)
    means = torch.randn(episodes, 5, d, generator=g)
    ys = torch.arange(5).repeat_interleave(shots).expand(episodes, -1)
    yq = torch.arange(5).repeat_interleave(15).expand(episodes, -1)
    pick = lambda y: torch.gather(means, 1, y[..., None].expand(-1, -1, d)) + spread * torch.randn(*y.shape, d, generator=g)
    return F.normalize(pick(ys), dim=-1), ys, F.normalize(pick(yq), dim=-1), yq


def timed(fn, *args, batch=None):
    zs, ys, zq, yq = args
    t0 = time.perf_counter()
    if batch:
        logits = torch.cat([fn(zs[i:i + batch], ys[i:i + batch], zq[i:i + batch], 5) for i in range(0, len(zs), batch)])
    else:
        logits = fn(zs, ys, zq, 5)
    sec = time.perf_counter() - t0
    return sec, (logits.argmax(-1) == yq).float().mean().item(), logits.argmax(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--batch", type=int, default=100, help="episodes per batched torch solve")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    harness.check_data("bench_adapt", "omniglot-minimal", splits=("test",))
    torch.set_num_threads(args.threads)
    print(f"{args.episodes} 5-way episodes, 15 queries/class, C=3, {args.threads} threads")
    print(f"{'features':<24} {'shots':>5} {'sklearn s':>9} {'torch s':>8} {'speedup':>8} {'acc sk %':>8} "
          f"{'acc torch %':>11} {'diff pts':>8} {'agree %':>7}")
    for name, make in (("omniglot conv4 (64-d)", omniglot_features), ("clustered (640-d)", clustered_features)):
        for shots in (1, 5):
            feats = make(shots, args.episodes)
            t_sk, a_sk, p_sk = timed(logreg_sklearn, *feats)
            t_to, a_to, p_to = timed(logreg_torch, *feats, batch=args.batch)
            agree = (p_sk == p_to).float().mean().item()
            print(f"{name:<24} {shots:>5} {t_sk:>9.2f} {t_to:>8.2f} {t_sk / t_to:>7.1f}x {100 * a_sk:>8.2f} "
                  f"{100 * a_to:>11.2f} {100 * (a_to - a_sk):>8.2f} {100 * agree:>7.2f}")


if __name__ == "__main__":
    main()
