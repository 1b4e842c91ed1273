"""MTL training throughput against a plain supervised step of the same backbone and batch.

The only extra work MTL does over supervised classification is gathering an episode's rows of
the head bank; this benchmark measures what that costs. Both steps see the same images
(ways * (shots + queries) of them), run forward, backward and a RAdam update; the supervised
step classifies them over all training classes with one nn.Linear.

    python benchmarks/bench_mtl_step.py [--backbone conv4] [--reps 30]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from mtl_meta.episodes import Episode
from mtl_meta.models import make_backbone
from mtl_meta.mtl import MTL


def timed(step, reps, warmup=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = [("conv4", 1, 28, 64, 5, 5, 5), ("conv4", 3, 84, 64, 5, 5, 5), ("resnet12", 3, 84, 64, 5, 5, 5)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps} steps")
    print(f"{'backbone':9s} {'input':9s} {'images':>6s} {'supervised ms':>14s} {'MTL ms':>8s} {'MTL/sup. throughput':>20s}")
    for name, c, size, n_classes, ways, shots, queries in settings:
        reps = args.reps if name == "conv4" else max(3, args.reps // 6)
        torch.manual_seed(0)
        n = ways * (shots + queries)
        x = torch.randn(n, c, size, size)
        local = torch.arange(ways).repeat_interleave(shots + queries)
        classes = torch.randperm(n_classes)[:ways]
        ep = Episode(x[: ways * shots], local[: ways * shots], x[ways * shots:], local[ways * shots:], classes)
        ep = Episode(torch.cat([ep.support, ep.query]), torch.cat([ep.support_labels, ep.query_labels]),
                     x[:0], local[:0], classes)

        body = make_backbone(name, in_channels=c, image_size=size)
        algo = MTL(body, n_classes=n_classes, ways=ways).train()
        opt = torch.optim.RAdam(algo.parameters(), lr=1e-3)
        def mtl_step():
            opt.zero_grad(set_to_none=True)
            loss, _ = algo.episode_loss(ep); loss.backward(); opt.step()

        body2 = make_backbone(name, in_channels=c, image_size=size)
        head = nn.Linear(body2.out_dim, n_classes)
        sup = nn.Sequential(body2, head).train()
        opt2 = torch.optim.RAdam(sup.parameters(), lr=1e-3)
        y = classes[local]
        def sup_step():
            opt2.zero_grad(set_to_none=True)
            F.cross_entropy(sup(x), y).backward(); opt2.step()

        t_sup, t_mtl = timed(sup_step, reps), timed(mtl_step, reps)
        print(f"{name:9s} {c}x{size}x{size:<4d} {n:6d} {1e3 * t_sup:14.1f} {1e3 * t_mtl:8.1f} {t_sup / t_mtl:20.2f}x")


if __name__ == "__main__":
    main()
