"""The full training loop against the step alone, images/s per method at the paper's episode shapes, and
the projected wall-clock of the paper's recipes (the GPU checklist's items 5 and 6; runs on CPU too).

    python benchmarks/bench_loop.py --device cuda [--precisions fp32 bf16-cl] [--updates 30 --warmup 10]
                                    [--val-episodes 50] [--compile] [--json FILE]
    # the CPU path, tiny (what the tests run):
    python benchmarks/bench_loop.py --device cpu --backbone conv4 --size 28 --channels 1 --classes 10 \\
        --per-class 30 --updates 2 --warmup 1 --val-episodes 2

Data: an in-memory split shaped like mini-ImageNet (`--classes` x `--per-class` images of `--channels` x
`--size`^2, random pixels: the cost does not depend on them), with MetaOptNet's augmentation (crop, jitter,
flip) on 3-channel images, drawn by the trainer's own `MetaBatchSampler`. Cases (`--cases`):

- `mtl`: the `paper` profile's MTL shape, 5-way 5 shots + 5 queries, meta-batch 1;
- `mtl-mb4` / `mtl-mb4-1fwd`: meta-batch 4, per-episode forwards / one forward (`TrainConfig.one_forward`);
- `svm`: MetaOptNet-SVM at its published recipe's shape, 5-way 15 shots + 6 queries, meta-batch 8.

For each case and precision (`fp32`; `bf16-cl`: bf16 autocast + channels-last): the full loop (sampling,
augmentation, copy, update: `Trainer.train_step` on the live sampler), the same with `prefetch=1`, and the
update alone (`train_step` on episodes already on the device), each on its own trainer, timed side by side by
`benchmarks/harness.py`: `--warmup` interleaved warm-up updates each, then interleaved rounds of about
`--min-block-s` of updates per variant (rotating order) until every ratio to the update alone has a 95% interval
within +-5%, or `--updates` rounds, or `--budget-s` per case and precision; ms/update is the median over rounds,
the ratio's interval is paired by round. Then one validation pass of `--val-episodes` episodes (logreg-torch, 15 queries) per case, and
the projection: the recipe's updates x the loop's time per update (the faster of with and without
prefetching) + its validations. MTL: the `paper` profile's 100 epochs of 1600 updates (the budget; early
stopping may end sooner) with 400 validation episodes per epoch, beside the paper's 3.7 V100 GPU-hours;
MetaOptNet-SVM: 60 epochs of 1000 updates of 8 episodes with 2000 validation episodes per epoch (the
MetaOptNet code's defaults), beside the paper's 85.6 V100 GPU-hours.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402

CASES = {
    "mtl": dict(method="mtl", shots=5, queries=5, meta_batch_size=1),
    "mtl-mb4": dict(method="mtl", shots=5, queries=5, meta_batch_size=4),
    "mtl-mb4-1fwd": dict(method="mtl", shots=5, queries=5, meta_batch_size=4, one_forward=True),
    "svm": dict(method="metaoptnet-svm", shots=15, queries=6, meta_batch_size=8),
}
RECIPES = {   # updates, validations and validation episodes of a whole run; the paper's V100 GPU-hours
    "mtl": dict(epochs=100, updates_per_epoch=1600, val_episodes=400, paper_hours=3.7),
    "svm": dict(epochs=60, updates_per_epoch=1000, val_episodes=2000, paper_hours=85.6),
}


class _Fixed:
    "A training sampler that returns the same device-resident episodes every step: the update alone."
    def __init__(self, episodes, m): self.episodes, self.meta_batch_size = episodes, m
    def sample_step(self, rank=0, world_size=1): return self.episodes
    def state_dict(self): return {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backbone", default="resnet12")
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=64)
    ap.add_argument("--per-class", type=int, default=600)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16-cl"], choices=["fp32", "bf16-cl"])
    ap.add_argument("--updates", type=int, default=30, help="interleaved rounds at most (a block of updates each)")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up updates per variant (interleaved), not recorded")
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("--min-block-s", type=float, default=0.3, help="seconds of updates per variant per round")
    ap.add_argument("--budget-s", type=float, default=120.0, help="time budget per case and precision, seconds")
    ap.add_argument("--val-episodes", type=int, default=50)
    ap.add_argument("--compile", action="store_true", help="also time the loop with TrainConfig.compile")
    ap.add_argument("--json", default="", help="also write every measurement here")
    args = ap.parse_args()
    if args.updates < 1 or args.warmup < 0 or args.val_episodes < 1:
        print("bench_loop: --updates and --val-episodes must be at least 1, --warmup at least 0", file=sys.stderr)
        sys.exit(2)
    from mtl_meta.adapt import Batching, evaluate
    from mtl_meta.core import check_device
    from mtl_meta.data import BatchAugment, IMAGENET_STATS
    from mtl_meta.episodes import EpisodeSampler, FewShotSplit, MetaBatchSampler
    from mtl_meta.gbml import make_algorithm
    from mtl_meta.models import make_backbone
    from mtl_meta.train import TrainConfig, Trainer
    dev = check_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    n = args.classes * args.per_class
    split = FewShotSplit(rng.integers(0, 256, (n, args.channels, args.size, args.size), dtype=np.uint8),
                         np.repeat(np.arange(args.classes), args.per_class), [str(i) for i in range(args.classes)], "synthetic")
    aug = BatchAugment(padding=8 if args.size >= 64 else 4, mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1]) \
        if args.channels == 3 else None
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.backbone} on {args.channels}x{args.size}x{args.size}, "
          f"{args.classes} classes x {args.per_class} images; augmentation {'on' if aug else 'off'}", flush=True)
    rows, results, intervals = [], [], []

    for case in args.cases:
        c = CASES[case]
        m, ways = c["meta_batch_size"], 5
        images = m * ways * (c["shots"] + c["queries"])
        for prec in args.precisions:
            variants = [("loop", 0, False), ("loop + prefetch", 1, False)] + ([("loop + compile", 0, True)] if args.compile else [])
            res = {"case": case, "precision": prec, "images_per_update": images}
            trainers = {}
            for label, prefetch, comp in [("step alone", 0, False), *variants]:
                torch.manual_seed(0)
                body = make_backbone(args.backbone, in_channels=args.channels, image_size=args.size)
                alg = make_algorithm(c["method"], body, n_classes=args.classes, ways=ways)
                cfg = TrainConfig(ways=ways, shots=c["shots"], queries=c["queries"], meta_batch_size=m, device=str(dev),
                                  amp="bf16" if prec == "bf16-cl" else None, channels_last=prec == "bf16-cl",
                                  one_forward=c.get("one_forward", False), prefetch=prefetch, compile=comp)
                sampler = MetaBatchSampler(split, ways, c["shots"], c["queries"], m, seed=0, transform=aug)
                tr = Trainer(alg, sampler, None, cfg)
                if label == "step alone":   # the update alone: episodes already on the device, drawn once
                    tr.train_sampler = _Fixed([tr._prepare(e) for e in sampler.sample_step()], m)
                trainers[label] = tr
            try:
                for tr in trainers.values():
                    tr._start_fast_paths()
                def steps(tr):
                    def run(n):
                        for _ in range(n):
                            tr.train_step()
                    return run
                cmp = harness.compare({k: steps(tr) for k, tr in trainers.items()}, "step alone",
                                      warmup_rounds=args.warmup, min_block_s=args.min_block_s,
                                      min_rounds=max(1, min(args.min_rounds, args.updates)), max_rounds=args.updates,
                                      budget_s=args.budget_s, sync=sync if dev.type == "cuda" else None)
                for k in trainers:
                    res[k] = cmp.median(k)
                    r = cmp.ratio(k)
                    if r is not None:   # throughput / step alone = t_step / t_variant, with its interval
                        res[f"{k} / step alone"] = {"estimate": 1 / r.estimate, "lo": None if r.hi is None else 1 / r.hi,
                                                    "hi": None if r.lo is None else 1 / r.lo}
                res["timing"] = cmp.summary()
                tr = trainers["loop"]
                val = EpisodeSampler(split, ways, c["shots"] if case != "svm" else 5, 15, seed=1000,
                                     transform=BatchAugment(padding=0, jitter=0, flip=False, mean=IMAGENET_STATS[0],
                                                            std=IMAGENET_STATS[1]) if aug else None)
                t0 = time.perf_counter()
                evaluate(tr.algorithm.features, val, adapt="logreg-torch", episodes=args.val_episodes, batching=Batching(device=dev))
                sync()
                res["validation_s_per_episode"] = (time.perf_counter() - t0) / args.val_episodes
            finally:
                for tr in trainers.values():
                    tr._stop_prefetch()
            del trainers, tr, alg, body
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            step = res["step alone"]
            for label in ["step alone", *[v[0] for v in variants]]:
                rows.append(f"| {case} | {prec} | {label} | {1e3 * res[label]:.1f} | {images / res[label]:.0f} | "
                            f"{step / res[label]:.3f} |")
                r = res.get(f"{label} / step alone")
                if r is not None:
                    ci = f"[{r['lo']:.3f}, {r['hi']:.3f}]" if r["lo"] is not None else "(no interval: 1 round)"
                    intervals.append(f"| {case} | {prec} | {label} | {r['estimate']:.3f} {ci} |")
            intervals.append(f"| {case} | {prec} | (timing) | {res['timing']} |")
            best = min(res["loop"], res["loop + prefetch"])
            recipe = RECIPES.get("svm" if case == "svm" else "mtl" if case == "mtl" else "")
            if recipe:
                hours = recipe["epochs"] * (recipe["updates_per_epoch"] * best
                                            + recipe["val_episodes"] * res["validation_s_per_episode"]) / 3600
                res["projected_hours"] = hours
                res["recipe"] = recipe
            results.append(res)
            print(json.dumps(res), flush=True)
    print("\n| case | precision | what | ms/update | images/s | throughput / step alone |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print("\nThroughput / step alone, paired by round (geometric mean over rounds, 95% Student t interval):\n")
    print("| case | precision | what | throughput / step alone [95% CI] |")
    print("| --- | --- | --- | --- |")
    print("\n".join(intervals))
    proj = [r for r in results if "projected_hours" in r]
    if proj:
        print("\n| run | precision | updates | validation episodes | loop ms/update | validation ms/episode "
              "| projected hours on this device | paper's V100 GPU-hours |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in proj:
            rc = r["recipe"]
            name = "MTL mini-ImageNet 5w5s (paper profile, full budget)" if r["case"] == "mtl" else \
                "MetaOptNet-SVM (its recipe: 60 x 1000 updates of 8 episodes)"
            print(f"| {name} | {r['precision']} | {rc['epochs'] * rc['updates_per_epoch']} | "
                  f"{rc['epochs'] * rc['val_episodes']} | {1e3 * min(r['loop'], r['loop + prefetch']):.1f} | "
                  f"{1e3 * r['validation_s_per_episode']:.1f} | {r['projected_hours']:.2f} | {rc['paper_hours']} |")
    if args.json:
        from pathlib import Path
        from mtl_meta.core import atomic_write_json
        atomic_write_json(Path(args.json), {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
