"""MTL training throughput against a plain supervised step of the same backbone and batch.

The only extra work MTL does over supervised classification is gathering an episode's rows of
the head bank; this benchmark measures what that costs. Both steps see the same images
(ways * (shots + queries) of them), run forward, backward and a RAdam update; the supervised
step classifies them over all training classes with one nn.Linear.

    python benchmarks/bench_mtl_step.py [--backbones conv4 resnet12] [--budget-s 120]
    python benchmarks/bench_mtl_step.py --device cuda --backbones resnet12 --amp bf16 --channels-last

On a GPU, run it three times (plain, `--amp bf16`, `--amp bf16 --channels-last`) for the
mixed-precision and memory-format gains; images/s is the MTL step's throughput.

Timing: `benchmarks/harness.py` (warm-up, then the two steps in interleaved rounds of about `--min-block-s`
each, until the ratio's 95% interval is within +-5%, `--reps` rounds or `--budget-s`); the MTL/supervised
throughput ratio is paired by round and shown with its interval.
"""
import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtl_meta.episodes import Episode
from mtl_meta.models import make_backbone
from mtl_meta.mtl import MTL
from mtl_meta.train import AMP_DTYPES

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200, help="interleaved rounds at most (ResNet-12 on a CPU: a sixth)")
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=120.0, help="time budget per setting, seconds")
    ap.add_argument("--min-block-s", type=float, default=0.2, help="seconds of steps per round and step (at least)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up rounds of one step each, not recorded")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--backbones", nargs="+", default=["conv4", "resnet12"], choices=["conv4", "resnet12"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=list(AMP_DTYPES), default=None, help="autocast both steps to this dtype")
    ap.add_argument("--channels-last", action="store_true", help="channels-last memory format for images and bodies")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = AMP_DTYPES.get(args.amp)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    settings = [(b, c, size, 64, 5, 5, 5) for b in args.backbones
                for c, size in ([(1, 28), (3, 84)] if b == "conv4" else [(3, 84)])]
    name_dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name_dev}; amp {args.amp or 'off'}, channels-last {args.channels_last}; "
          f"harness: at most {args.reps} interleaved rounds (ResNet-12 on a CPU: {max(3, args.reps // 6)}) or "
          f"{args.budget_s:.0f} s per setting; forward + backward + RAdam")
    print(f"{'backbone':9s} {'input':9s} {'images':>6s} {'supervised ms':>14s} {'MTL ms':>8s} {'MTL images/s':>13s} "
          f"{'MTL/sup. throughput':>20s}  [95% CI] verdict rounds")
    for name, c, size, n_classes, ways, shots, queries in settings:
        reps = args.reps if name == "conv4" or device.type == "cuda" else max(3, args.reps // 6)
        torch.manual_seed(0)
        n = ways * (shots + queries)
        x = torch.randn(n, c, size, size).to(device, memory_format=fmt)
        local = torch.arange(ways).repeat_interleave(shots + queries).to(device)
        classes = torch.randperm(n_classes)[:ways].to(device)
        # MTL trains on every image of the episode: put them all in the support part
        ep = Episode(x, local, x[:0], local[:0], classes)
        autocast = lambda: torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
        scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")

        body = make_backbone(name, in_channels=c, image_size=size)
        algo = MTL(body, n_classes=n_classes, ways=ways).to(device, memory_format=fmt).train()
        opt = torch.optim.RAdam(algo.parameters(), lr=1e-3)
        def mtl_step(n):
            for _ in range(n):
                opt.zero_grad(set_to_none=True)
                with autocast():
                    loss, _ = algo.episode_loss(ep)
                scaler.scale(loss).backward(); scaler.step(opt); scaler.update()

        body2 = make_backbone(name, in_channels=c, image_size=size)
        head = nn.Linear(body2.out_dim, n_classes)
        sup = nn.Sequential(body2, head).to(device, memory_format=fmt).train()
        opt2 = torch.optim.RAdam(sup.parameters(), lr=1e-3)
        y = classes[local]
        def sup_step(n):
            for _ in range(n):
                opt2.zero_grad(set_to_none=True)
                with autocast():
                    loss = F.cross_entropy(sup(x).float(), y)
                scaler.scale(loss).backward(); scaler.step(opt2); scaler.update()

        res = harness.compare({"supervised": sup_step, "mtl": mtl_step}, "supervised", warmup_rounds=args.warmup,
                              min_block_s=args.min_block_s, min_rounds=max(1, min(args.min_rounds, reps)),
                              max_rounds=max(1, reps), budget_s=args.budget_s,
                              sync=torch.cuda.synchronize if device.type == "cuda" else None)
        t_sup, t_mtl = res.median("supervised"), res.median("mtl")
        r = res.ratio("mtl").inverse()   # throughput ratio MTL / supervised = t_sup / t_mtl, paired by round
        ci = f"[{r.lo:.2f}, {r.hi:.2f}]" if r.lo is not None else "[no interval]"
        print(f"{name:9s} {c}x{size}x{size:<4d} {n:6d} {1e3 * t_sup:14.1f} {1e3 * t_mtl:8.1f} {n / t_mtl:13.1f} "
              f"{r.estimate:20.2f}x {ci} {harness.verdict(res.ratio('mtl'), 'MTL-faster', 'MTL-slower').replace(' ', '-')} "
              f"{res.rounds}", flush=True)


if __name__ == "__main__":
    main()
