"""Cost and accuracy of the infinite-width theory on this machine.

1. Time to compute the NTK Theta and the readout kernel K (neural-tangents `stax`, float64) for
   n points against themselves, for fully connected ReLU networks of several depths.
2. How far trained finite-width networks (torch, float64) are from the closed-form predictors of
   `mtl_meta.ntk`, for joint training, MTL and ANIL (with a support/query split), against width:
   the relative disagreement of their test-task predictions, mean over seeds.

    python benchmarks/bench_ntk.py [--points 1000] [--depths 1 16 64] [--widths 256 1024 4096] [--seeds 3]
"""
import argparse
import time

import numpy as np
import torch

from mtl_meta.ntk import kernels, meta_test_predictions, relative_gap, synthetic_family, train_finite


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.points, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    print(f"NTK + NNGP of {args.points} x {args.points} points (8-d inputs, float64), neural-tangents on CPU")
    print(f"{'depth':>5s} {'first call s':>13s} {'repeat s':>9s}")
    for depth in args.depths:
        t0 = time.perf_counter(); kernels(x, x, depth); t1 = time.perf_counter()
        kernels(x, x, depth); t2 = time.perf_counter()
        print(f"{depth:5d} {t1 - t0:13.2f} {t2 - t1:9.2f}")

    torch.set_num_threads(torch.get_num_threads())
    lr = 1.5
    small = synthetic_family(T=3, n=8)
    eta = lr / len(small.Y)
    closed_split = meta_test_predictions(small, 1, lam=0.1, tau=1, split=True, eta=eta, steps=args.steps)
    closed = meta_test_predictions(small, 1, eta=eta, steps=args.steps)
    print(f"\nfinite width vs closed form (depth 1, {args.steps} GD steps, mean over {args.seeds} seeds): "
          "relative disagreement of test-task predictions")
    print(f"{'width':>6s} " + " ".join(f"{m:>8s}" for m in ("joint", "mtl", "anil")))
    for w in args.widths:
        errs = []
        for method in ("joint", "mtl", "anil"):
            ref = closed_split["anil"] if method == "anil" else closed[method]
            errs.append(np.mean([relative_gap(train_finite(method, small, 1, w, seed=s, steps=args.steps, lr=lr), ref)
                                 for s in range(args.seeds)]))
        print(f"{w:6d} " + " ".join(f"{e:8.4f}" for e in errs))


if __name__ == "__main__":
    main()
