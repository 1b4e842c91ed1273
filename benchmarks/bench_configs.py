"""The fastest correct configuration for small models on few cores: the same updates under each setting.

    python benchmarks/bench_configs.py [--methods mtl protonet --updates 30 --val-episodes 100] [--out FILE]

Each configuration trains the `cpu` profile's final-run shape (Conv-4 on the real Omniglot minimal sets,
20-way training episodes of 1 + 5 images per class, rotated training classes, seed 0) for `--updates`
updates in two epochs, in a fresh child process, and reports the steady cost of an update (the second
epoch: sampling + update, the full loop; and the update alone, from `Trainer.timings`) and whether the
weights after the last update are bit-for-bit those of the reference configuration (2 torch threads,
the committed runs' setting, `figures/runs/environment/environment.json`).

Configurations: torch threads per run (1, 2); two runs at once (`reproduce --jobs 2`) at 1 and 2 threads
each, as the pair's combined updates per second; channels-last; oneDNN off; `prefetch=1`; `one_forward`
(meta-batch 2, MTL only: a different number of episodes per update, so its weights are not compared);
`torch.compile` (with `--with-compile` only: compiling takes minutes here). Then validation on `--val-episodes`
episodes with the trained body: as the trainer runs it (embedding the split once, batched episodes),
without embedding the split, and under `torch.inference_mode`, with the accuracies compared.

Timings on a shared machine are noisy: each configuration runs `--repeats` times, interleaved, and the
median is shown.
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIGS = {
    "2 threads (reference)": {"threads": 2},
    "1 thread": {"threads": 1},
    "2 threads, channels-last": {"threads": 2, "channels_last": True},
    "2 threads, oneDNN off": {"threads": 2, "mkldnn": False},
    "2 threads, prefetch 1": {"threads": 2, "prefetch": 1},
    "1 thread, prefetch 1": {"threads": 1, "prefetch": 1},
    "2 threads, torch.compile": {"threads": 2, "compile": True},
}
PAIRS = {"2 runs at once, 1 thread each": {"threads": 1}, "2 runs at once, 2 threads each": {"threads": 2}}


def worker(spec: dict) -> dict:
    import torch
    torch.set_num_threads(spec["threads"])
    if spec.get("mkldnn") is False:
        torch.backends.mkldnn.enabled = False
    from mtl_meta import api
    u = spec["updates"]
    cfg = dict(ways=5, shots=1, queries=5, train_ways=20, lr=1e-2, max_steps=u, episodes_per_epoch=u // 2,
               val_episodes=5, val_adapt="logreg-torch", seed=0, channels_last=spec.get("channels_last", False),
               prefetch=spec.get("prefetch", 0), compile=spec.get("compile", False),
               meta_batch_size=spec.get("meta_batch_size", 1), one_forward=spec.get("one_forward", False))
    if cfg["meta_batch_size"] > 1:
        cfg["episodes_per_epoch"] *= cfg["meta_batch_size"]
    opts = {"head_lr": 0.1} if spec["method"] == "mtl" else {}
    s = api.train(spec["method"], out_dir=spec["out"], train_rotations=True, resume=False, **cfg, **opts)
    h = s["history"]
    steady = (h[-1]["seconds"] - h[0]["seconds"]) / (h[-1]["step"] - h[0]["step"])
    t = s["timings"]
    ck = torch.load(Path(spec["out"]) / "checkpoint.pt", weights_only=True)["algorithm"]
    digest = hashlib.sha256(b"".join(v.detach().contiguous().cpu().numpy().tobytes() for v in ck.values())).hexdigest()
    out = {"loop_ms": 1e3 * steady, "step_ms": 1e3 * steady * t["update"] / (t["update"] + t["sample"]),
           "digest": digest, "threads": torch.get_num_threads()}
    if spec.get("validation"):
        from mtl_meta.adapt import Batching, evaluate
        from mtl_meta.data import load_split
        from mtl_meta.episodes import EpisodeSampler
        alg, _ = api.load_trained(Path(spec["out"]) / "checkpoint.pt")
        val = load_split("omniglot-minimal", "val")
        def run(**kw):
            t0 = time.perf_counter()
            r = evaluate(alg.features, EpisodeSampler(val, 5, 1, 15, seed=1000), adapt="logreg-torch",
                         episodes=spec["validation"], **kw)
            return time.perf_counter() - t0, r.accuracies
        run()   # warm-up
        variants = {"as the trainer runs it (split embedded once)": lambda: run(),
                    "each episode embedded on its own": lambda: run(batching=Batching(embed_split=False))}
        def inference():
            with torch.inference_mode():
                return run()
        variants["under torch.inference_mode"] = inference
        res = {name: fn() for name, fn in variants.items()}
        ref = next(iter(res.values()))[1]
        out["validation"] = {k: {"s": v[0], "same": v[1] == ref} for k, v in res.items()}
    return out


def launch(spec: dict):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": str(spec["threads"])}
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def collect(p) -> dict:
    out, err = p.communicate(timeout=900)
    if p.returncode:
        return {"error": (err.strip().splitlines() or ["exit code %d" % p.returncode])[-1][:160]}
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["mtl", "protonet"])
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--val-episodes", type=int, default=100)
    ap.add_argument("--skip", nargs="*", default=[], help="configuration names to leave out")
    ap.add_argument("--with-compile", action="store_true", help="also time torch.compile (minutes of compiling)")
    ap.add_argument("--out", default="")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.updates < 4 or args.updates % 2:
        print("bench_configs: --updates must be an even number, at least 4", file=sys.stderr)
        sys.exit(2)
    import tempfile
    import torch
    t_all = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="bench-configs-")
    lines = []
    for method in args.methods:
        configs = {k: v for k, v in CONFIGS.items() if k not in args.skip and (args.with_compile or not v.get("compile"))}
        if method == "mtl":
            configs["2 threads, meta-batch 2, one forward"] = {"threads": 2, "meta_batch_size": 2, "one_forward": True}
            configs["2 threads, meta-batch 2, per episode"] = {"threads": 2, "meta_batch_size": 2}
        runs = {k: [] for k in [*configs, *PAIRS]}
        for rep in range(args.repeats):
            for name, c in configs.items():
                spec = {**c, "method": method, "updates": args.updates, "out": f"{tmp}/{method}-{len(runs[name])}-{rep}"}
                if name.startswith("2 threads (reference)") and rep == 0:
                    spec["validation"] = args.val_episodes
                runs[name].append(collect(launch(spec)))
            for name, c in PAIRS.items():
                ps = [launch({**c, "method": method, "updates": args.updates, "out": f"{tmp}/{method}-pair{i}-{rep}"})
                      for i in range(2)]
                rs = [collect(p) for p in ps]
                if any("error" in r for r in rs):
                    runs[name].append(next(r for r in rs if "error" in r)); continue
                # the pair's throughput: two updates per (slower) update time
                runs[name].append({"loop_ms": max(r["loop_ms"] for r in rs) / 2, "step_ms": max(r["step_ms"] for r in rs) / 2,
                                   "digest": rs[0]["digest"] if rs[0]["digest"] == rs[1]["digest"] else "pair differs"})
        ref = runs["2 threads (reference)"][0]
        lines += [f"## {method}", "", "| configuration | loop ms/update | update alone ms | loop / update-alone throughput "
                  "| speed-up vs reference (loop) | weights bit-identical to reference |", "| --- | --- | --- | --- | --- | --- |"]
        ref_loop = statistics.median(r["loop_ms"] for r in runs["2 threads (reference)"] if "error" not in r)
        for name, rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            if not ok:
                lines.append(f"| {name} | failed: {rs[0]['error']} | | | | |"); continue
            loop, step = statistics.median(r["loop_ms"] for r in ok), statistics.median(r["step_ms"] for r in ok)
            same = "n/a (other meta-batch)" if "meta-batch" in name else (
                "yes" if all(r["digest"] == ref["digest"] for r in ok) else "no")
            lines.append(f"| {name} | {loop:.1f} | {step:.1f} | {step / loop:.3f} | {ref_loop / loop:.2f} | {same} |")
        if "validation" in ref:
            lines += ["", f"Validation of the trained body on {args.val_episodes} episodes (5-way 1-shot, 15 queries, "
                      "logreg-torch, 2 threads):", "", "| variant | seconds | same accuracies |", "| --- | --- | --- |"]
            lines += [f"| {k} | {v['s']:.2f} | {'yes' if v['same'] else 'no'} |" for k, v in ref["validation"].items()]
        lines.append("")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    head = ["# Configurations side by side on CPU", "",
            "Command: `python benchmarks/bench_configs.py " + " ".join(sys.argv[1:]) + "`", "",
            f"Commit {commit}; torch {torch.__version__}, {os.cpu_count()} CPUs; {args.updates} updates per run, "
            f"median of {args.repeats}; benchmark wall-clock {time.perf_counter() - t_all:.0f} s.", ""]
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(head + lines)
    print(text)
    if args.out:
        from mtl_meta.core import atomic_write_text
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
