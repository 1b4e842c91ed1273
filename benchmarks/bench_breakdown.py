"""Where a `cpu` profile final run spends its wall-clock: one short run per method at the profile's settings.

    python benchmarks/bench_breakdown.py [--updates 20 --val-episodes 200 --test-episodes 100 --methods mtl ...]
                                         [--setting 5w1s] [--out benchmarks/results/breakdown.md]

Each method trains through `mtl_meta.api.train` (the code path of the profile's `fewshot.ipynb`) on the real
Omniglot minimal sets with the `cpu` profile's final-run settings (20-way training episodes of 1 + 5 images
per class, rotated training classes, validation on 200 episodes of 15 queries, logreg-torch) and the learning
rates selected in `figures/cpu-2026-11/tuning.json`, for `--updates` updates in two epochs (so two validations and two
checkpoints), then is tested on `--test-episodes` episodes of each test setting (5-way 1-shot and 20-way
1-shot). The trainer's own timers (`Trainer.timings`) split training into episode sampling, updates,
validation and checkpoint writing; `setup` is data loading and model building. Process and notebook
start-up are measured once: a child Python importing the package, and papermill executing a one-cell
notebook (a kernel started and the package imported), as `reproduce` does for every run.

Two tables: the shares in this short run, and the shares projected for one complete final run of the
committed reproduction (its seeds, updates and validations per seed from `figures/cpu-2026-11/runs/*/results.json`,
1000 test episodes per test setting), from the per-unit costs measured here. Timing only: nothing of the
committed results is written.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402  (the one-line no-data stop)

REPO = Path(__file__).resolve().parents[1]
PARTS = ("start-up", "setup", "sampling", "updates", "validation", "testing", "writing", "other")


def startup_seconds() -> dict:
    "Wall-clock of a child process importing the package, and of papermill running a one-cell notebook."
    import nbformat
    import papermill
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mtl_meta.sweep, mtl_meta.api, mtl_meta.gbml"], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    proc = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import mtl_meta.api, mtl_meta.gbml")])
        nbformat.write(nb, f"{d}/in.ipynb")
        t0 = time.perf_counter()
        papermill.execute_notebook(f"{d}/in.ipynb", f"{d}/out.ipynb", kernel_name="python3", language="python",
                                   progress_bar=False, log_output=False, cwd=str(REPO),
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])
        kernel = time.perf_counter() - t0
    return {"process": proc, "notebook": kernel}


def selected_trials() -> dict:
    try:
        return json.loads((REPO / "figures" / "cpu-2026-11" / "tuning.json").read_text())["selected"]
    except (OSError, ValueError, KeyError):
        return {}


def committed_counts(method: str, setting: str) -> dict | None:
    "Seeds, and updates and validations per seed, of the committed final run of `method`."
    p = REPO / "figures" / "cpu-2026-11" / "runs" / f"omniglot-minimal-{setting}-{method}" / "results.json"
    try:
        r = json.loads(p.read_text())
        rec = json.loads((p.parent / "run.json").read_text())
    except (OSError, ValueError):
        return None
    seeds = r["per_seed"]
    return {"seeds": len(seeds), "steps": [s["steps"] for s in seeds], "epochs": [s["epochs"] for s in seeds],
            "tests": len(r.get("tests", [])) or 1, "test_episodes": r.get("test_episodes", 1000),
            "val_episodes": r["train_config"]["val_episodes"], "run_seconds": rec.get("seconds"), "train_seconds": sum(s["train_seconds"] for s in seeds)}


def one_method(method: str, args, root: str, trials: dict, out: Path) -> dict:
    from mtl_meta import api
    from mtl_meta.profiles import PROFILES, setting_key
    ways, shots = int(args.setting.split("w")[0]), int(args.setting.split("w")[1].rstrip("s"))
    run = next(r for r in PROFILES["cpu"] if r.name == f"omniglot-minimal-{args.setting}-{method}")
    p = run.parameters
    trial = trials.get(setting_key("omniglot-minimal", 5, 1, method), {}).get("trial", {})
    from mtl_meta.profiles import split_trial
    cfg_trial, opt_trial = split_trial(trial)
    cfg = {**p["train_config"], **cfg_trial, "seed": 0, "max_steps": args.updates,
           "episodes_per_epoch": max(1, args.updates // 2), "val_episodes": args.val_episodes, "prefetch": args.prefetch}
    opts = {**p["algorithm_options"], **opt_trial}
    t0 = time.perf_counter()
    s = api.train(method=method, dataset=p["dataset"], backbone=p["backbone"], out_dir=out / method, data_root=root,
                  train_rotations=p.get("train_rotations", False), algorithm_options=opts, resume=False, **cfg)
    train_wall = time.perf_counter() - t0
    tm = s["timings"]
    tests = [(ways, shots), *map(tuple, p.get("extra_tests", []))]
    test_fixed, test_per_episode = 0.0, 0.0   # per test setting: loading the checkpoint and data; each episode
    for w, k in tests:
        walls = []
        for n in (1, args.test_episodes):
            t0 = time.perf_counter()
            api.evaluate(out / method / "checkpoint.pt", ways=w, shots=k, queries=p["test_queries"],
                         episodes=n, adapt=p["adapt"], seed=10_000, data_root=root)
            walls.append(time.perf_counter() - t0)
        per = max(0.0, walls[1] - walls[0]) / (args.test_episodes - 1) if args.test_episodes > 1 else walls[0]
        test_fixed += max(0.0, walls[0] - per); test_per_episode += per
    test_wall = test_fixed + args.test_episodes * test_per_episode
    t0 = time.perf_counter()
    from mtl_meta.core import atomic_write_json
    atomic_write_json(out / method / "results.json", {"per_seed": [s["history"]]})   # what the notebook writes
    write_extra = time.perf_counter() - t0
    parts = {"setup": tm["setup"], "sampling": tm["sample"], "updates": tm["update"], "validation": tm["validate"],
             "testing": test_wall, "writing": tm["save"] + write_extra,
             "other": max(0.0, train_wall - sum(tm.values()))}
    h = s["history"]   # the second epoch, past the first updates' warm-up: the steady cost of an update
    steady = (h[-1]["seconds"] - h[0]["seconds"]) / max(1, h[-1]["step"] - h[0]["step"])
    return {"method": method, "parts": parts, "steps": s["steps"], "validations": len(s["history"]),
            "saves": len(s["history"]), "tests": len(tests), "train_wall": train_wall, "steady_update": steady,
            "test_fixed": test_fixed, "test_per_episode": test_per_episode}


def project(m: dict, start: dict, counts: dict, args) -> dict:
    "Seconds of one complete committed final run of the method, from this run's per-unit costs."
    p, n = m["parts"], counts
    # the steady loop cost per update (second epoch), split as the whole run split sampling and updates
    share = p["sampling"] / max(1e-12, p["sampling"] + p["updates"])
    steps, epochs = sum(n["steps"]), sum(n["epochs"])
    return {"start-up": start["process"] + start["notebook"], "setup": n["seeds"] * p["setup"],
            "sampling": steps * m["steady_update"] * share, "updates": steps * m["steady_update"] * (1 - share),
            "validation": epochs * p["validation"] / m["validations"] * n["val_episodes"] / args.val_episodes,
            "testing": n["seeds"] * (m["test_fixed"] + n["test_episodes"] * m["test_per_episode"]) * n["tests"] / m["tests"],
            "writing": epochs * p["writing"] / m["saves"], "other": epochs * p["other"] / m["validations"]}


def table(rows: list[tuple[str, dict]], extra_head: list[str] = (), extra: dict | None = None) -> list[str]:
    head = ["method", "total s", *[f"{k} %" for k in PARTS], *extra_head]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, parts in rows:
        tot = sum(parts.values())
        cells = [name, f"{tot:.1f}", *[f"{100 * parts.get(k, 0.0) / tot:.1f}" for k in PARTS], *(extra or {}).get(name, [])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    from mtl_meta.profiles import compared_methods
    METHODS = compared_methods()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--setting", default="5w1s", choices=["5w1s", "5w5s"], help="which final runs of the profile")
    ap.add_argument("--updates", type=int, default=20, help="training updates per method (two epochs)")
    ap.add_argument("--val-episodes", type=int, default=200, help="validation episodes (the profile's 200)")
    ap.add_argument("--test-episodes", type=int, default=100, help="test episodes per test setting (the profile: 1000)")
    ap.add_argument("--prefetch", type=int, default=0, help="TrainConfig.prefetch for the runs")
    ap.add_argument("--data-root", default=os.environ.get("MTL_META_DATA", ""))
    ap.add_argument("--out", default="", help="also write the report (markdown) here, atomically")
    args = ap.parse_args()
    if args.updates < 2 or args.val_episodes < 1 or args.test_episodes < 1:
        print("bench_breakdown: --updates must be at least 2, --val-episodes and --test-episodes at least 1",
              file=sys.stderr)
        sys.exit(2)
    harness.check_data("bench_breakdown", "omniglot-minimal", args.data_root, splits=("train", "val", "test"))
    import torch
    t_all = time.perf_counter()
    start = startup_seconds()
    trials = selected_trials()
    measured, projected, check = [], [], {}
    with tempfile.TemporaryDirectory() as d:
        for method in args.methods:
            m = one_method(method, args, args.data_root or None, trials, Path(d))
            measured.append((method, {"start-up": start["process"] + start["notebook"], **m["parts"]}))
            counts = committed_counts(method, args.setting)
            if counts:
                pr = project(m, start, counts, args)
                projected.append((method, pr))
                check[method] = [f"{sum(counts['steps'])}", f"{sum(counts['epochs'])}",
                                 f"{counts['run_seconds']:.0f}" if counts["run_seconds"] else "-",
                                 f"{m['steady_update'] * 1e3:.1f}",
                                 f"{m['steady_update'] * 1e3 * m['parts']['updates'] / max(1e-12, m['parts']['updates'] + m['parts']['sampling']):.1f}"]
            print(f"{method}: " + ", ".join(f"{k} {v:.2f}s" for k, v in m["parts"].items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, cwd=REPO).stdout.strip())
    lines = [f"# Where a `cpu` profile final run spends its time ({args.setting})", "",
             "Command: `python benchmarks/bench_breakdown.py " + " ".join(sys.argv[1:]) + "`", "",
             f"Commit {commit}{' (with uncommitted changes)' if dirty else ''}; torch {torch.__version__}, "
             f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs; benchmark wall-clock "
             f"{time.perf_counter() - t_all:.0f} s.", "",
             f"Start-up, measured once: a child process importing the package {start['process']:.2f} s, papermill "
             f"running a one-cell notebook {start['notebook']:.2f} s.", "",
             f"## This run: {args.updates} updates, 2 validations of {args.val_episodes} episodes, "
             f"{args.test_episodes} test episodes per test setting", ""]
    lines += table(measured)
    if projected:
        lines += ["", "## Projected: one complete final run of the committed reproduction", "",
                  "Per-unit costs from the table above, times the committed run's seeds, updates and validations "
                  "(`figures/cpu-2026-11/runs/*/results.json`) and its 1000 test episodes per setting; updates at the second epoch's "
                  "steady cost per update, tests at the cost per episode (beyond the first) plus the fixed cost of a test. `committed run s` is the "
                  "wall-clock that run recorded (another day, other load), for scale. `loop ms/update`: sampling + "
                  "update; `step ms/update`: the update alone.", ""]
        lines += table(projected, ["updates", "validations", "committed run s", "loop ms/update", "step ms/update"],
                       check)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from mtl_meta.core import atomic_write_text
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
