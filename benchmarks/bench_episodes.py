"""Episode sampling throughput: episodes per second for N-way K-shot Q-query episodes drawn from
the real Omniglot minimal sets (1x28x28) and from an in-memory 84x84x3 split shaped like
mini-ImageNet (64 classes x 600 images, random pixels: sampling cost does not depend on them).

    python benchmarks/bench_episodes.py [--ways 5 --shots 5 --queries 15 --batch 1 --seconds 3]

Compare with the training-step rate printed by benchmarks/bench_mtl_step.py: the target is at
least 10x, so that sampling is never the bottleneck. Uses one thread (as a data-loading worker would).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mtl_meta.data import load_split, train_transform
from mtl_meta.episodes import EpisodeSampler, FewShotSplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402  (the one-line no-data stop)


def rate(sampler, batch, seconds):
    sampler.sample_batch(batch)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sampler.sample_batch(batch)
        n += batch
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ways", type=int, default=5)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--batch", type=int, default=1, help="episodes per sample_batch call")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    harness.check_data("bench_episodes", "omniglot-minimal", splits=("train",))
    torch.set_num_threads(1)
    shape = f"{args.ways}-way {args.shots}-shot {args.queries}-query, batch {args.batch}"
    print(f"episode sampling, {shape}, 1 thread")
    print(f"{'data':<42} {'episodes/s':>10} {'images/s':>10}")
    per_ep = args.ways * (args.shots + args.queries)
    omni = load_split("omniglot-minimal", "train")
    rng = np.random.default_rng(0)
    mini = FewShotSplit(rng.integers(0, 256, (64 * 600, 3, 84, 84), dtype=np.uint8), np.repeat(np.arange(64), 600),
                        [str(i) for i in range(64)], name="84x84 fixture")
    cases = [("omniglot-minimal/train (1x28x28)", omni, None),
             ("84x84x3, 64x600 (normalise only)", mini, train_transform("mini-imagenet", augment=False)),
             ("84x84x3, 64x600 (+ MetaOptNet augmentation)", mini, train_transform("mini-imagenet", augment=True))]
    for name, split, tf in cases:
        r = rate(EpisodeSampler(split, args.ways, args.shots, args.queries, seed=0, transform=tf), args.batch, args.seconds)
        print(f"{name:<42} {r:>10.1f} {r * per_ep:>10.0f}")


if __name__ == "__main__":
    main()
