"""Episodes from a large image folder: peak memory and episodes per second of the three routes.

    python benchmarks/bench_loader.py [--images 20000 --classes 200 --size 84 --episodes 300 --workers 2]

A folder of generated PNG images (`--classes` classes, `--images` in all, `--size` pixels square, colour) is
written once under $MTL_META_CACHE and reused. Each route runs in its own process, so its peak memory
(the maximum resident set, ru_maxrss, of the process and, for the DataLoader, of its workers) is its own:

  cached       load_image_folder: the training split decoded once into the cache and held as one array,
               then EpisodeSampler (today's route); its setup includes that first decode
  cached-warm  the same, the cache already written (a second run on the same folder)
  lazy         LazyImageFolder + EpisodeSampler: each episode's images decoded when it is drawn
  dataloader   LazyImageFolder + EpisodeBatchSampler through torch's DataLoader with --workers processes

Episodes are 5-way 1-shot 15-query from the training split (80 images each). `setup` is the seconds until
the first episode; `episodes/s` is measured over the next --episodes. No number here is asserted anywhere.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

WAYS, SHOTS, QUERIES = 5, 1, 15
ROUTES = ("cached", "cached-warm", "lazy", "dataloader")


def make_folder(root: Path, classes: int, images: int, size: int) -> Path:
    "The generated folder (written once): class k is noise around its own random pattern, as real classes differ."
    import numpy as np
    from PIL import Image
    done = root / "complete"
    if done.exists():
        return root
    rng = np.random.default_rng(0)
    per = images // classes
    for k in range(classes):
        d = root / f"class{k:04d}"
        d.mkdir(parents=True, exist_ok=True)
        pattern = rng.integers(0, 256, (size, size, 3))
        for i in range(per):
            noisy = np.clip(pattern + rng.normal(0, 40, pattern.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(d / f"{i:04d}.png")
    done.write_text(f"{classes} classes x {per} images of {size}x{size}\n")
    return root


def run_route(route: str, folder: Path, episodes: int, workers: int) -> dict:
    "Measure one route in this process; returns its row."
    import torch
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if route in ("cached", "cached-warm"):
        from mtl_meta.data import load_split
        from mtl_meta.episodes import EpisodeSampler
        sampler = EpisodeSampler(load_split(str(folder), "train"), WAYS, SHOTS, QUERIES, seed=0)
        draw = sampler.sample
    elif route == "lazy":
        from mtl_meta.data import LazyImageFolder
        from mtl_meta.episodes import EpisodeSampler
        sampler = EpisodeSampler(LazyImageFolder(folder, "train"), WAYS, SHOTS, QUERIES, seed=0)
        draw = sampler.sample
    else:
        from torch.utils.data import DataLoader
        from mtl_meta.data import LazyImageFolder
        from mtl_meta.episodes import EpisodeBatchSampler
        ds = LazyImageFolder(folder, "train")
        batches = EpisodeBatchSampler(ds, WAYS, SHOTS, QUERIES, episodes=episodes + 1, seed=0)
        stream = iter(DataLoader(ds, batch_sampler=batches, collate_fn=batches.collate, num_workers=workers,
                                 prefetch_factor=4 if workers else None, persistent_workers=False))
        draw = lambda: next(stream)
    first = draw()
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(episodes):
        e = draw()
    rate = episodes / (time.perf_counter() - t1)
    assert e.support.shape[0] == WAYS * SHOTS and first.query.shape[0] == WAYS * QUERIES
    if route == "dataloader":
        del stream   # the workers exit, so their peak memory is counted below
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"route": route, "setup_s": round(setup, 2), "episodes_per_s": round(rate, 1),
            "peak_mib": round(peak_kib / 1024, 1), "workers": workers if route == "dataloader" else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--size", type=int, default=84)   # mini-ImageNet's size
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table to OUT/loader.md (e.g. benchmarks/results)")
    ap.add_argument("--route", choices=ROUTES, help=argparse.SUPPRESS)   # internal: measure one route, print JSON
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.route:
        print(json.dumps(run_route(a.route, Path(a.folder), a.episodes, a.workers)))
        return
    from mtl_meta.core import cache_dir
    folder = make_folder(cache_dir() / f"bench-loader-{a.classes}x{a.images // a.classes}-{a.size}px",
                         a.classes, a.images, a.size)
    env = {**os.environ, "MTL_META_CACHE": str(folder.parent / f"{folder.name}-cache")}
    import shutil
    shutil.rmtree(env["MTL_META_CACHE"], ignore_errors=True)   # 'cached' measures the first decode
    rows = []
    for route in ROUTES:
        r = subprocess.run([sys.executable, __file__, "--route", route, "--folder", str(folder), "--episodes",
                            str(a.episodes), "--workers", str(a.workers)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"route {route} failed:\n{r.stderr[-2000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    n_train = sum(1 for _ in folder.glob("*/*.png"))
    lines = [f"{a.classes} classes, {n_train} images of {a.size}x{a.size} (RGB PNG), 5-way 1-shot 15-query episodes "
             f"from the training split, {a.episodes} timed, one torch thread per process, {os.cpu_count()} cores",
             "", "| route | setup (s) | episodes/s | peak memory (MiB) | workers |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['route']} | {r['setup_s']} | {r['episodes_per_s']} | {r['peak_mib']} | {r['workers']} |" for r in rows]
    print("\n".join(lines))
    if a.out:
        import platform
        from mtl_meta.core import atomic_write_text
        command = "python benchmarks/bench_loader.py " + " ".join(sys.argv[1:])
        atomic_write_text(Path(a.out) / "loader.md", "\n".join(
            ["# Episodes from a large image folder: the three routes", "", f"`{command}` on "
             f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}; one measurement per route "
             "(a throughput and a peak, not a ratio: no interval).", "", *lines, ""]))


if __name__ == "__main__":
    main()
