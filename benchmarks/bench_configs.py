"""The fastest correct configuration for small models on few cores: the same training updates under each setting,
timed side by side by the harness.

    python benchmarks/bench_configs.py [--methods mtl protonet] [--budget-min 15] [--val-episodes 100]
                                       [--out benchmarks/results] [--twice] [--with-compile] [--skip NAME ...]

Each configuration is a worker process that holds one trainer of the `cpu` profile's final-run shape
(`benchmarks/cpu_update.py`: Conv-4 on the real Omniglot minimal sets, 20-way training episodes of 1 + 5 images
per class, rotated training classes, the tuned learning rates, seed 0) under its own settings, and runs training
updates (sampling included: `Trainer.train_step`) when the harness asks. Workers start once, train
`--check-updates` updates (whose weights are compared bit for bit with the reference's: same floats or not), and
are then timed by `benchmarks/harness.py`: warm-up, interleaved rounds of about `--min-block-s` per
configuration, rotating order, until every speed-up's 95% interval is within +-5% or the budget runs out.

Configurations: torch threads per run (2: the reference, the committed runs' setting; 1); channels-last; oneDNN
off; `prefetch=1` at 2 and 1 threads; two runs at once at 1 and 2 threads each (their combined throughput: the
pair's wall-clock over both runs' updates); for methods that allow it (MTL), meta-batch 2 with one forward against
meta-batch 2 per episode; `torch.compile` with `--with-compile` (minutes of compiling). Times are per training
episode (per update at meta-batch 1, half an update at meta-batch 2). A configuration is faster than its reference
only when its interval excludes 1. Then validation on `--val-episodes` episodes with the reference's body: as the
trainer runs it (embedding the split once), without embedding the split, and under `torch.inference_mode`, timed
the same way, with the accuracies compared.

Writes `configs.md`, `configs.csv` and `configs.json` to `--out` (default benchmarks/results). `--twice` measures
every configuration twice in a row and adds both runs side by side with the largest speed-up difference. Exit
status 2 with one line when the data set is missing.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness   # noqa: E402

PROG = "bench_configs"
REFERENCE = "2 threads (reference)"
CONFIGS = {
    REFERENCE: {"threads": 2},
    "1 thread": {"threads": 1},
    "2 threads, channels-last": {"threads": 2, "channels_last": True},
    "2 threads, oneDNN off": {"threads": 2, "mkldnn": False},
    "2 threads, prefetch 1": {"threads": 2, "prefetch": 1},
    "1 thread, prefetch 1": {"threads": 1, "prefetch": 1},
    "2 threads, torch.compile": {"threads": 2, "compile": True},
}
ONE_FORWARD = {   # methods with supports_one_forward only; the first is compared with the second
    "2 threads, meta-batch 2, one forward": {"threads": 2, "meta_batch_size": 2, "one_forward": True},
    "2 threads, meta-batch 2, per episode": {"threads": 2, "meta_batch_size": 2},
}
PAIRS = {"2 runs at once, 1 thread each": {"threads": 1}, "2 runs at once, 2 threads each": {"threads": 2}}
OVERRIDES = ("channels_last", "prefetch", "compile", "meta_batch_size", "one_forward")


# ---- the worker process ----------------------------------------------------------------------------------------

def worker(spec: dict) -> None:
    "Build the trainer, train the check updates, then run blocks of updates on request (one JSON line each way)."
    proto, sys.stdout = sys.stdout, sys.stderr   # only protocol lines on the real stdout

    def reply(obj):
        proto.write("@@" + json.dumps(obj) + "\n")
        proto.flush()

    try:
        import torch
        torch.set_num_threads(spec["threads"])
        if spec.get("mkldnn") is False:
            torch.backends.mkldnn.enabled = False
        import cpu_update as cu
        over = {k: spec[k] for k in OVERRIDES if k in spec}
        tr = cu.build_trainer(spec["method"], spec.get("shots", 1), spec.get("data_root"), **over)
        episodes = tr.config.meta_batch_size
        for _ in range(spec["check_updates"]):
            tr.train_step()
        reply({"ready": True, "digest": cu.weights_digest(tr), "threads": torch.get_num_threads(),
               "onednn": bool(torch.backends.mkldnn.enabled), "episodes_per_update": episodes})
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "run":
                t0 = time.perf_counter()
                for _ in range(cmd["n"]):
                    tr.train_step()
                reply({"s": time.perf_counter() - t0, "episodes": episodes * cmd["n"]})
            else:
                break
        tr._stop_prefetch()
    except Exception as e:   # noqa: BLE001  (reported to the parent in one line)
        reply({"error": f"{type(e).__name__}: {e}"})
        sys.exit(1)


class Worker:
    "A configuration's worker process, driven over its stdin/stdout."
    def __init__(self, spec: dict, logdir: str):
        self.spec = spec
        self.log = open(Path(logdir) / f"w{id(self)}.log", "w+")
        env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]),
               "PYTHONPATH": os.pathsep.join([str(harness.REPO), str(HERE), os.environ.get("PYTHONPATH", "")])}
        self.p = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, bufsize=1)
        self.info = None

    def recv(self) -> dict:
        for line in self.p.stdout:
            if line.startswith("@@"):
                msg = json.loads(line[2:])
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg
        self.log.seek(0)
        tail = [ln for ln in self.log.read().splitlines() if ln.strip()][-1:] or [f"exit code {self.p.wait()}"]
        raise RuntimeError(f"worker stopped: {tail[0][:200]}")

    def ready(self) -> dict:
        self.info = self.recv()
        return self.info

    def send(self, n: int) -> None:
        self.p.stdin.write(json.dumps({"op": "run", "n": n}) + "\n")
        self.p.stdin.flush()

    def close(self) -> None:
        try:
            if self.p.poll() is None:
                self.p.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.p.stdin.close()
                self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        self.log.close()


def single(w: Worker):
    "Harness case: n updates in one worker, timed inside it; seconds per training episode."
    def run(n):
        w.send(n)
        r = w.recv()
        return r["s"] * n / r["episodes"]   # the harness divides by n: per episode
    return run


def pair(a: Worker, b: Worker):
    "Harness case: n updates in each of two workers at once; the pair's wall-clock per update of the two."
    def run(n):
        t0 = time.perf_counter()
        a.send(n), b.send(n)
        a.recv(), b.recv()
        return (time.perf_counter() - t0) / 2
    return run


# ---- the parent -------------------------------------------------------------------------------------------------

def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["mtl", "protonet"])
    ap.add_argument("--budget-min", type=float, default=15.0, help="time budget per method and run, minutes")
    ap.add_argument("--target", type=float, default=0.05, help="relative half-width of the 95%% intervals to reach")
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("--max-rounds", type=int, default=1000)
    ap.add_argument("--warmup-rounds", type=int, default=2)
    ap.add_argument("--min-block-s", type=float, default=1.0, help="seconds of updates per configuration per round")
    ap.add_argument("--check-updates", type=int, default=4, help="updates whose weights are compared bit for bit")
    ap.add_argument("--val-episodes", type=int, default=100, help="validation episodes per pass (0: no validation)")
    ap.add_argument("--skip", nargs="*", default=[], help="configuration names to leave out")
    ap.add_argument("--only", nargs="*", default=None, help="only these configurations (and the reference)")
    ap.add_argument("--with-compile", action="store_true", help="also time torch.compile (minutes of compiling)")
    ap.add_argument("--data-root", default=os.environ.get("MTL_META_DATA", ""))
    ap.add_argument("--twice", action="store_true", help="measure twice in a row and compare the runs")
    ap.add_argument("--out", default=str(harness.REPO / "benchmarks" / "results"), help="folder for the tables")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return args
    if args.budget_min <= 0 or args.target <= 0 or args.min_rounds < 2 or args.max_rounds < args.min_rounds \
            or args.warmup_rounds < 0 or args.min_block_s < 0 or args.check_updates < 1 or args.val_episodes < 0:
        print(f"{PROG}: need --budget-min and --target > 0, 2 <= --min-rounds <= --max-rounds, --check-updates >= 1, "
              "--warmup-rounds, --min-block-s and --val-episodes >= 0", file=sys.stderr)
        sys.exit(2)
    return args


def configurations(method: str, args) -> tuple[dict, dict, dict]:
    "(singles, pairs, references) for `method`."
    from mtl_meta.gbml import ALGORITHMS
    singles = {k: v for k, v in CONFIGS.items() if args.with_compile or not v.get("compile")}
    if getattr(ALGORITHMS[method], "supports_one_forward", False):
        singles.update(ONE_FORWARD)
    pairs = dict(PAIRS)
    keep = lambda k: k == REFERENCE or (k not in args.skip and (args.only is None or k in args.only))
    singles, pairs = {k: v for k, v in singles.items() if keep(k)}, {k: v for k, v in pairs.items() if keep(k)}
    refs = {k: REFERENCE for k in [*singles, *pairs] if k != REFERENCE}
    one, per = list(ONE_FORWARD)
    if one in singles and per in singles:
        refs[one] = per
    return singles, pairs, refs


def measure_method(method: str, args, tmp: str, log) -> dict:
    singles, pairs, refs = configurations(method, args)
    base = {"method": method, "shots": 1, "data_root": args.data_root or None, "check_updates": args.check_updates}
    workers = {k: Worker({**base, **v}, tmp) for k, v in singles.items()}
    pair_workers = {k: (Worker({**base, **v}, tmp), Worker({**base, **v}, tmp)) for k, v in pairs.items()}
    failed, digests, infos = {}, {}, {}
    try:
        t0 = time.perf_counter()
        for k, w in workers.items():
            try:
                infos[k] = w.ready()
                digests[k] = infos[k]["digest"]
            except RuntimeError as e:
                failed[k] = str(e)
        for k, (a, b) in pair_workers.items():
            try:
                ia, ib = a.ready(), b.ready()
                infos[k] = ia
                digests[k] = ia["digest"] if ia["digest"] == ib["digest"] else "pair differs"
            except RuntimeError as e:
                failed[k] = str(e)
        if REFERENCE in failed:
            harness.fail(PROG, f"{method}: the reference configuration failed: {failed[REFERENCE]}")
        log(f"{method}: {len(workers) + 2 * len(pair_workers)} workers ready in {time.perf_counter() - t0:.0f} s"
            + (f"; failed: {', '.join(failed)}" if failed else ""))
        cases = {k: single(w) for k, w in workers.items() if k not in failed}
        cases.update({k: pair(*ab) for k, ab in pair_workers.items() if k not in failed})
        refs = {k: r for k, r in refs.items() if k in cases and r in cases}

        def once():
            return harness.compare(cases, refs, warmup_rounds=args.warmup_rounds, min_block_s=args.min_block_s,
                                   min_rounds=args.min_rounds, max_rounds=args.max_rounds, budget_s=60 * args.budget_min,
                                   target=args.target, gap_s=0.05, progress=lambda m: log(f"{method}: {m}"))

        try:
            results = list(harness.twice(once, log)) if args.twice else [once()]
        except RuntimeError as e:
            harness.fail(PROG, f"{method}: a worker failed while timed: {e}")
    finally:
        for w in [*workers.values(), *(x for ab in pair_workers.values() for x in ab)]:
            w.close()
    ref_digest = digests[REFERENCE]
    same = {k: ("n/a (other meta-batch)" if "meta-batch" in k else "yes" if d == ref_digest else "no")
            for k, d in digests.items()}
    validation = validate(method, args, log) if args.val_episodes else None
    return {"results": results, "same": same, "failed": failed, "infos": infos, "validation": validation}


def validate(method: str, args, log) -> dict:
    "Validation of the reference trainer's body, three ways, timed by the harness in this process."
    import torch
    torch.set_num_threads(2)
    import cpu_update as cu
    from mtl_meta.adapt import Batching, evaluate
    from mtl_meta.data import load_split
    from mtl_meta.episodes import EpisodeSampler
    tr = cu.build_trainer(method, 1, args.data_root)
    for _ in range(args.check_updates):
        tr.train_step()
    tr._stop_prefetch()
    body = tr.algorithm.features
    val = load_split(cu.DATASET, "val", data_root=args.data_root or None)
    accs = {}

    def variant(name, **kw):
        def once():
            return evaluate(body, EpisodeSampler(val, 5, 1, 15, seed=1000), adapt="logreg-torch",
                            episodes=args.val_episodes, **kw).accuracies
        def run(n):
            for _ in range(n):
                accs[name] = once()
        return run

    def inference(run):
        def wrapped(n):
            with torch.inference_mode():
                run(n)
        return wrapped

    cases = {"as the trainer runs it (split embedded once)": variant("embedded"),
             "each episode embedded on its own": variant("per-episode", batching=Batching(embed_split=False)),
             "under torch.inference_mode": inference(variant("inference"))}
    res = harness.compare(cases, warmup_rounds=args.warmup_rounds, min_block_s=args.min_block_s,
                          min_rounds=args.min_rounds, max_rounds=args.max_rounds, budget_s=60 * args.budget_min / 3,
                          target=args.target, progress=lambda m: log(f"{method} validation: {m}"))
    ref = accs["embedded"]
    return {"result": res, "same": {"as the trainer runs it (split embedded once)": True,
                                    "each episode embedded on its own": accs["per-episode"] == ref,
                                    "under torch.inference_mode": accs["inference"] == ref}}


def main():
    args = parse()
    if args.worker:
        worker(json.loads(args.worker))
        return
    from mtl_meta.gbml import ALGORITHMS
    bad = [m for m in args.methods if m not in ALGORITHMS]
    if bad:
        print(f"{PROG}: unknown method(s) {', '.join(bad)}; known: {', '.join(ALGORITHMS)}", file=sys.stderr)
        sys.exit(2)
    import cpu_update as cu
    harness.check_data(PROG, cu.DATASET, args.data_root, splits=("train", "val") if args.val_episodes else ("train",))
    import torch
    log = lambda msg: print(f"[{PROG}] {msg}", file=sys.stderr, flush=True)
    m_info = harness.machine(2)
    log(harness.machine_line(m_info))
    t_all = time.perf_counter()
    per_method = {}
    with tempfile.TemporaryDirectory(prefix="bench-configs-") as tmp:
        for method in args.methods:
            per_method[method] = measure_method(method, args, tmp, log)
    command = "python benchmarks/bench_configs.py " + " ".join(sys.argv[1:])
    text, rows, raw = report(per_method, m_info, command, args, time.perf_counter() - t_all)
    print(text)
    out = Path(args.out)
    harness.write_text(out / "configs.md", text)
    harness.write_csv(out / "configs.csv", rows)
    harness.write_text(out / "configs.json", json.dumps({"command": command, "machine": m_info, "args": vars(args),
                                                         "rows": rows, "methods": raw}, indent=1, default=str) + "\n")
    log(f"wrote {out / 'configs.md'}, .csv and .json")


def report(per_method: dict, m_info: dict, command: str, args, wall: float):
    lines = ["# Configurations side by side on CPU", "", f"Command: `{command}`", "",
             f"Machine: {harness.machine_line(m_info)}; benchmark wall-clock {wall:.0f} s.", "",
             "Each configuration: a worker process with one trainer of the `cpu` profile's final-run shape "
             "(Conv-4, Omniglot minimal with rotated classes, 20-way training episodes of 1 + 5 images per class, "
             "tuned learning rates, seed 0), timed per training episode (sampling + update) by "
             "`benchmarks/harness.py`: warm-up, interleaved rounds in rotating order, Student t intervals on the "
             "per-round log ratios. Speed-up = reference time / configuration time; a configuration is faster or "
             "slower only when the interval excludes 1. Two runs at once: the pair's wall-clock over both runs' "
             f"updates. Weights compared after {args.check_updates} updates from the same start.", ""]
    rows, raw = [], {}
    for method, pm in per_method.items():
        lines += [f"## {method}", ""]
        raw[method] = {"failed": pm["failed"], "bit_identical": pm["same"], "workers": pm["infos"], "runs": []}
        for k, res in enumerate(pm["results"], 1):
            if len(pm["results"]) > 1:
                lines += [f"### Run {k}", ""]
            lines += [res.summary() + ".", ""]
            extra = {c: [pm["same"].get(c, "?")] for c in res.cases}
            lines += harness.table(res, label="configuration", unit="ms/episode", speedup=True, extra=extra,
                                   extra_head=["weights bit-identical to reference"])
            lines.append("")
            for rec in harness.records(res):
                c = rec["case"]
                r = res.ratio(c)
                sp = r.inverse() if r else None
                rows.append({"run": k, "method": method, "configuration": c, "ms_per_episode": rec["mean"],
                             "ms_lo95": rec["lo"], "ms_hi95": rec["hi"], "ms_median": rec["median"],
                             "ms_p25": rec["p25"], "ms_p75": rec["p75"], "reference": rec["reference"],
                             "speedup": sp.estimate if sp else 1.0, "speedup_lo95": sp.lo if sp else "",
                             "speedup_hi95": sp.hi if sp else "", "verdict": rec["verdict"],
                             "bit_identical": pm["same"].get(c, "?"), "rounds": rec["rounds"],
                             "updates_per_round": rec["units_per_round"], "target_met": res.target_met,
                             "cpu_model": m_info.get("cpu_model"), "physical_cores": m_info.get("physical_cores"),
                             "onednn": m_info.get("onednn")})
            raw[method]["runs"].append({"summary": res.summary(), "seconds_per_episode": res.seconds,
                                        "units": res.units, "order": res.order})
        if len(pm["results"]) == 2:
            rep, worst = harness.twice_table(*pm["results"], speedup=True)
            lines += ["### Repeatability: the two runs side by side", "", *rep, "",
                      f"Largest speed-up difference between the runs: {worst['abs']:.3f} ({100 * worst['rel']:.1f}% of "
                      f"run 1's), {worst['case']}.", ""]
            raw[method]["largest_difference"] = worst
        for k, e in pm["failed"].items():
            lines.append(f"- {k}: failed: {e}")
        if pm["failed"]:
            lines.append("")
        v = pm["validation"]
        if v:
            res = v["result"]
            lines += [f"Validation of the reference's body on {args.val_episodes} episodes per pass (5-way 1-shot, 15 "
                      "queries, logreg-torch, 2 threads), seconds per pass:", "", res.summary() + ".", ""]
            lines += harness.table(res, label="variant", unit="s/pass", scale=1.0, speedup=True,
                                   extra={c: ["yes" if v["same"][c] else "no"] for c in res.cases},
                                   extra_head=["same accuracies"])
            lines.append("")
            raw[method]["validation"] = {"summary": res.summary(), "seconds_per_pass": res.seconds, "same": v["same"]}
    return "\n".join(lines), rows, raw


if __name__ == "__main__":
    main()
