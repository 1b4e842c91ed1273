"""Data-parallel scaling: MTL training throughput (episodes/s of the training loop, from each run's
summary) with 1 process versus N processes started by `mtl-meta train --devices N` (torchrun + DDP,
gloo on CPU, nccl with --device cuda), same global meta-batch, same episodes.

    python benchmarks/bench_distributed.py [--devices 2] [--steps 40] [--meta-batch-size 4] [--device cpu]

On a CPU every process gets OMP_NUM_THREADS=1 (torchrun's default), so compare against one
process with the same total number of threads as well.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402  (the one-line no-data stop)


def run(devices, threads, args, out):
    exe = shutil.which("mtl-meta", path=str(Path(sys.executable).parent)) or "mtl-meta"
    cmd = [exe, "train", "--method", args.method, "--dataset", "omniglot-minimal", "--backbone", "conv4",
           "--ways", "5", "--shots", "5", "--queries", "15", "--meta-batch-size", str(args.meta_batch_size),
           "--max-steps", str(args.steps), "--episodes-per-epoch", str(10 ** 6), "--val-episodes", "4",
           "--no-progress", "--device", args.device, "--out", str(out)]
    if devices > 1:
        cmd += ["--devices", str(devices)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    s = json.loads((out / "summary.json").read_text())
    return s["steps"] * args.meta_batch_size / s["train_seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--meta-batch-size", type=int, default=4)
    ap.add_argument("--method", default="mtl")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    harness.check_data("bench_distributed", "omniglot-minimal")
    print(f"{args.method}, conv4, omniglot-minimal 5-way 5-shot 15-query, global meta-batch {args.meta_batch_size}, "
          f"{args.steps} updates, {os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as d:
        rows = [("1 process, 1 thread", run(1, 1, args, Path(d) / "a")),
                (f"1 process, {args.devices} threads", run(1, args.devices, args, Path(d) / "b")),
                (f"{args.devices} processes x 1 thread (DDP)", run(args.devices, 1, args, Path(d) / "c"))]
    base = rows[0][1]
    print(f"{'configuration':<34} {'episodes/s':>10} {'speedup':>8}")
    for name, r in rows:
        print(f"{name:<34} {r:>10.1f} {r / base:>7.2f}x")


if __name__ == "__main__":
    main()
