"""Training cost per episode of every algorithm (MTL and the meta-learning baselines), and its ratio to MTL.

One training step on one episode = forward, backward and a RAdam update (what `Trainer` does with
a meta-batch of 1). Every method sees the same synthetic episode: `ways` classes with `shots`
support and `queries` query images each; the meta-learners adapt on the support images and are
scored on the queries, MTL trains on all shots + queries images of the episode at once. Methods
use their default hyper-parameters (MAML/ANIL: the 5-way Omniglot preset, one inner step), and
MAML, first-order MAML and ANIL are also timed with 5 inner steps (the miniImageNet setting).

    python benchmarks/bench_algorithms.py                       # Conv-4, 1x28x28, 5-way 1- and 5-shot, 15 queries
    python benchmarks/bench_algorithms.py --backbone resnet12 --channels 3 --size 84 --shots 5 --device cuda

The backbone comes from `mtl_meta.models.make_backbone` (conv4 or resnet12). Timing: `benchmarks/harness.py`
(warm-up, then interleaved rounds of about `--min-block-s` per method in rotating order, until every ratio to MTL
has a 95% interval within +-5%, `--reps` rounds or `--budget-s`); `x MTL` is paired by round, and a method is
faster or slower than MTL only when its interval excludes 1.
"""
import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from mtl_meta.episodes import Episode
from mtl_meta.gbml import ALGORITHMS, make_algorithm
from mtl_meta.models import make_backbone

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402


def backbone(name: str, in_channels: int, image_size: int) -> tuple[nn.Module, str]:
    return make_backbone(name, in_channels=in_channels, image_size=image_size), "mtl_meta.models.make_backbone"


def synthetic_episode(ways, shots, queries, channels, size, n_classes, device, seed=0) -> Episode:
    g = torch.Generator().manual_seed(seed)
    ys, yq = torch.arange(ways).repeat_interleave(shots), torch.arange(ways).repeat_interleave(queries)
    xs = torch.randn(len(ys), channels, size, size, generator=g)
    xq = torch.randn(len(yq), channels, size, size, generator=g)
    classes = torch.randperm(n_classes, generator=g)[:ways]
    return Episode(xs, ys, xq, yq, classes).to(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="conv4")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--ways", type=int, default=5)
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--n-classes", type=int, default=64, help="training classes (size of MTL's head bank)")
    ap.add_argument("--methods", nargs="+", default=list(ALGORITHMS), choices=list(ALGORITHMS))
    ap.add_argument("--extra-inner-steps", type=int, nargs="*", default=[5],
                    help="also time MAML, first-order MAML and ANIL with these numbers of inner steps")
    ap.add_argument("--reps", type=int, default=200, help="interleaved rounds at most (each: a block of steps per method)")
    ap.add_argument("--min-rounds", type=int, default=5, help="rounds at least (at most --reps)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="time budget per shots setting, seconds")
    ap.add_argument("--min-block-s", type=float, default=0.2, help="seconds of steps per method per round (at least)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up rounds of one step per method, not recorded")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = ["mtl"] + [m for m in args.methods if m != "mtl"]  # MTL first: it is the reference
    runs = [(m, m, {}) for m in methods]  # (label, method, options)
    runs += [(f"{m} ({k} steps)", m, {"inner_steps": k}) for k in args.extra_inner_steps
             for m in methods if m in ("maml", "fomaml", "anil")]

    _, source = backbone(args.backbone, args.channels, args.size)
    print(f"torch {torch.__version__} on {device} ({torch.get_num_threads()} threads); backbone {args.backbone} "
          f"({source}), input {args.channels}x{args.size}x{args.size}; {args.ways}-way, {args.queries} queries per "
          f"class; forward + backward + RAdam update; harness: {args.warmup} warm-up rounds, interleaved rounds of "
          f"at least {args.min_block_s} s per method, at most {args.reps} rounds or {args.budget_s:.0f} s per setting")
    print()
    print("| shots | method | images/episode | ms/episode (median) | IQR ms | x MTL | x MTL [95% CI] | verdict | steps x rounds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    notes = []
    for shots in args.shots:
        ep = synthetic_episode(args.ways, shots, args.queries, args.channels, args.size, args.n_classes, device)
        steps = {}
        for label, name, opts in runs:
            torch.manual_seed(0)
            body, _ = backbone(args.backbone, args.channels, args.size)
            alg = make_algorithm(name, body, n_classes=args.n_classes, ways=args.ways, **opts).to(device).train()
            opt = torch.optim.RAdam(alg.parameters(), lr=1e-3)
            # MTL with per-task heads (mtl-tasks) trains on a fixed pool of tasks: give it one of them
            task_ep = ep if not hasattr(alg, "pool") else Episode(
                ep.support, ep.support_labels, ep.query, ep.query_labels, alg.pool[0].to(device))

            def step(n, alg=alg, opt=opt, task_ep=task_ep):
                for _ in range(n):
                    opt.zero_grad(set_to_none=True)
                    loss, _ = alg.episode_loss(task_ep)
                    loss.backward()
                    opt.step()

            steps[label] = step
        res = harness.compare(steps, "mtl", warmup_rounds=args.warmup, min_block_s=args.min_block_s,
                              min_rounds=max(1, min(args.min_rounds, args.reps)), max_rounds=max(1, args.reps),
                              budget_s=args.budget_s, sync=sync)
        notes.append(f"{shots}-shot: " + res.summary())
        n_img = ep.support.shape[0] + ep.query.shape[0]
        for label in steps:
            lo, hi = res.spread(label)
            r = res.ratio(label)
            ratio = r.estimate if r else 1.0
            print(f"| {shots} | {label} | {n_img} | {1e3 * res.median(label):.1f} | {1e3 * (hi - lo):.1f} | {ratio:.2f} | "
                  f"{r.text('.2f') if r else 'reference'} | {harness.verdict(r) if r else ''} | "
                  f"{res.units[label]} x {len(res.seconds[label])} |", flush=True)
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
