"""Per-update time of every method side by side, in one run, at the `cpu` profile's settings (the table a cost
verdict multiplies by exact update counts).

    python benchmarks/bench_update_time.py [--methods mtl maml ...] [--settings 5w1s 5w5s] [--budget-min 20]
                                           [--out benchmarks/results] [--twice] [--data-root DIR]

Every compared method (mtl, maml, fomaml, anil, metaoptnet-svm, metaoptnet-rr, r2d2, protonet) in 5-way 1-shot
and 5-way 5-shot, each one training update as the profile's final run makes it (`benchmarks/cpu_update.py`:
Conv-4, Omniglot minimal with rotated training classes, 20-way training episodes of shots + 5 images per class,
the learning rates selected in `figures/cpu-2026-11/tuning.json`, seed 0): episode sampling and the update,
`Trainer.train_step`, i.e. the training loop without its per-epoch validation and checkpoint.

All 16 trainers live in this one process and are timed by `benchmarks/harness.py`: warm-up, then interleaved
rounds of about `--min-block-s` of updates per method, rotating the order, until every method's ms/update and its
ratio to MTL in the same setting have 95% intervals within +-`--target` (5%) or the budget runs out (the report
says which). A method is faster or slower than MTL only when its ratio's interval excludes 1.

Writes to `--out` (default benchmarks/results): `update-time.md` (the table, the machine, the command),
`update-time.csv` (one row per method and setting: `ms_per_update` with `ms_lo95`/`ms_hi95`, median and IQR, ratio
to MTL with its interval, rounds, the machine) and `update-time.json` (the same plus every round's measurement).
`--twice` runs the whole measurement twice and adds the two runs side by side with their largest ratio difference.
Exit status 2 with one line when the data set is missing.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness   # noqa: E402

PROG = "bench_update_time"
PROFILE_WIDTH = 64   # Conv-4's channels in the cpu profile (models.Conv4's default)


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=None, help="default: every compared method")
    ap.add_argument("--settings", nargs="+", default=["5w1s", "5w5s"], choices=["5w1s", "5w5s"])
    ap.add_argument("--budget-min", type=float, default=20.0, help="time budget of one measurement, minutes")
    ap.add_argument("--target", type=float, default=0.05, help="relative half-width of every 95%% interval to reach")
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("--max-rounds", type=int, default=1000)
    ap.add_argument("--warmup-rounds", type=int, default=2, help="interleaved rounds of one update each, not recorded")
    ap.add_argument("--min-block-s", type=float, default=1.0, help="seconds of updates per method per round (at least)")
    ap.add_argument("--ratios-only", action="store_true",
                    help="stop when the ratios to MTL are tight (default: the ms/update values too)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the profile's runs)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", default=os.environ.get("MTL_META_DATA", ""))
    ap.add_argument("--widths", nargs="+", type=int, default=None,
                    help="Conv-4 channel widths to time, each against MTL at the same width (the regime map's "
                         f"capacity axis: 32 64 128); default: the profile's {PROFILE_WIDTH} only")
    ap.add_argument("--twice", action="store_true", help="measure twice in a row and compare the runs")
    ap.add_argument("--out", default=str(harness.REPO / "benchmarks" / "results"), help="folder for the tables")
    args = ap.parse_args()
    if args.budget_min <= 0 or args.target <= 0 or args.min_rounds < 2 or args.max_rounds < args.min_rounds \
            or args.warmup_rounds < 0 or args.min_block_s < 0 or any(w < 1 for w in args.widths or []):
        print(f"{PROG}: need --budget-min and --target > 0, 2 <= --min-rounds <= --max-rounds, --warmup-rounds and "
              "--min-block-s >= 0, and --widths of 1 or more", file=sys.stderr)
        sys.exit(2)
    return args


def main():
    args = parse()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import cpu_update as cu
    known = cu.methods()
    methods = args.methods or known
    bad = [m for m in methods if m not in known]
    if bad:
        print(f"{PROG}: unknown method(s) {', '.join(bad)}; the compared methods are {', '.join(known)}", file=sys.stderr)
        sys.exit(2)
    harness.check_data(PROG, cu.DATASET, args.data_root, splits=("train",))
    from mtl_meta.core import check_device
    dev = check_device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    log = lambda msg: print(f"[{PROG}] {msg}", file=sys.stderr, flush=True)
    m_info = {**harness.machine(torch.get_num_threads()), "device": str(dev)}
    if dev.type == "cuda":
        m_info["gpu"] = torch.cuda.get_device_name(dev)
    log(harness.machine_line(m_info))

    trials = cu.selected_trials()
    ref_method = "mtl" if "mtl" in methods else methods[0]
    cases, refs, trainers, info = {}, {}, {}, {}
    t0 = time.perf_counter()
    widths = list(dict.fromkeys(args.widths or [PROFILE_WIDTH]))
    for width in widths:
        suffix = "" if width == PROFILE_WIDTH else f" w{width}"   # the profile's width keeps the names it always had
        for setting in args.settings:
            shots = cu.SETTINGS[setting]
            for m in methods:
                name = f"{setting} {m}{suffix}"
                cfg, opts, trial = cu.settings(m, shots, trials)
                tr = cu.build_trainer(m, shots, args.data_root, trials, device=str(dev),
                                      backbone_options=None if width == PROFILE_WIDTH else {"hidden": width})
                trainers[name] = tr
                info[name] = {"setting": setting, "method": m, "width": width, "lr": cfg.get("lr"), "trial": trial,
                              "options": opts}
                cases[name] = counted(tr)
                refs[name] = f"{setting} {ref_method}{suffix}"
    log(f"{len(cases)} trainers built in {time.perf_counter() - t0:.0f} s")

    def measure():
        return harness.compare(cases, refs, warmup_rounds=args.warmup_rounds, min_block_s=args.min_block_s,
                               min_rounds=args.min_rounds, max_rounds=args.max_rounds, budget_s=60 * args.budget_min,
                               target=args.target, absolute=not args.ratios_only, sync=sync, progress=log)

    results = list(harness.twice(measure, log)) if args.twice else [measure()]
    for tr in trainers.values():
        tr._stop_prefetch()
    command = "python benchmarks/bench_update_time.py " + " ".join(sys.argv[1:])
    text, rows, raw = report(results, info, m_info, command, ref_method, cases)
    print(text)
    out = Path(args.out)
    harness.write_text(out / "update-time.md", text)
    harness.write_csv(out / "update-time.csv", rows)
    harness.write_text(out / "update-time.json", json.dumps(
        {"command": command, "machine": m_info, "args": vars(args), "rows": rows, "runs": raw}, indent=1) + "\n")
    log(f"wrote {out / 'update-time.md'}, .csv and .json")


def counted(trainer):
    "The harness case of `trainer`, which also adds up how much of its time went to drawing episodes."
    def run(n):
        s0, u0 = trainer.timings["sample"], trainer.timings["update"]
        for _ in range(n):
            trainer.train_step()
        run.sample += trainer.timings["sample"] - s0
        run.total += trainer.timings["sample"] - s0 + trainer.timings["update"] - u0
    run.sample = run.total = 0.0
    return run


def report(results, info, m_info, command, ref_method, cases):
    widths = sorted({i["width"] for i in info.values()})
    title = ("# Per-update time of every method at the `cpu` profile's settings" if widths == [PROFILE_WIDTH] else
             f"# Per-update time at Conv-4 widths {', '.join(map(str, widths))} (the regime map's capacity axis)")
    lines = [title, "",
             f"Command: `{command}`", "", f"Machine: {harness.machine_line(m_info)}; device {m_info['device']}"
             + (f" ({m_info['gpu']})" if m_info.get("gpu") else "") + ".", "",
             "One update = `Trainer.train_step` (episode sampling + forward, backward, RAdam step) of the profile's "
             "final run: Conv-4, Omniglot minimal with rotated training classes, 20-way training episodes of shots + 5 "
             "images per class, meta-batch 1, learning rates from `figures/cpu-2026-11/tuning.json` (its 5-way 1-shot "
             "selection for both settings). Timed by `benchmarks/harness.py`: interleaved rounds after warm-up; "
             "`mean` is the geometric mean over rounds with its 95% Student t interval, the ratio to "
             f"{ref_method} in the same setting (and Conv-4 width, `wN` in a name; none: the profile's {PROFILE_WIDTH}) "
             "is paired by round (t on the per-round log ratios); faster or slower "
             "only when that interval excludes 1. The cost of a run = its updates x `mean ms/update` (plus its "
             "validations, checkpoints and tests, not timed here).", ""]
    rows, raw = [], []
    total_share = {c: (cases[c].sample / cases[c].total if cases[c].total else 0.0) for c in cases}
    for k, res in enumerate(results, 1):
        if len(results) > 1:
            lines += [f"## Run {k}", ""]
        lines += [res.summary() + ".", ""]
        extra = {c: [f"{100 * total_share[c]:.1f}"] for c in res.cases}
        lines += harness.table(res, label="setting, method", unit="ms/update", names=None, extra=extra,
                               extra_head=["sampling %"], ratio_label=f"x {ref_method} (time ratio)")
        lines.append("")
        for rec in harness.records(res):
            c = rec["case"]
            rows.append({"run": k, "setting": info[c]["setting"], "method": info[c]["method"], "width": info[c]["width"],
                         "ms_per_update": rec["mean"], "ms_lo95": rec["lo"], "ms_hi95": rec["hi"],
                         "ms_median": rec["median"], "ms_p25": rec["p25"], "ms_p75": rec["p75"],
                         "ratio_vs": ref_method, "ratio": rec["ratio"], "ratio_lo95": rec["ratio_lo"],
                         "ratio_hi95": rec["ratio_hi"], "verdict": rec["verdict"], "rounds": rec["rounds"],
                         "updates_per_round": rec["units_per_round"], "target_met": res.target_met,
                         "sampling_share": round(total_share[c], 4), "lr": info[c]["lr"],
                         "cpu_model": m_info.get("cpu_model"), "physical_cores": m_info.get("physical_cores"),
                         "logical_cpus": m_info.get("logical_cpus"), "torch_threads": m_info.get("torch_threads"),
                         "onednn": m_info.get("onednn"), "device": m_info.get("device")})
        raw.append({"summary": res.summary(), "target_met": res.target_met, "stopped": res.stopped,
                    "rounds": res.rounds, "elapsed_s": res.elapsed_s, "units": res.units,
                    "seconds_per_update": res.seconds, "warmup_seconds_per_update": res.warmup, "order": res.order})
    if len(results) == 2:
        rep, worst = harness.twice_table(*results)
        lines += ["## Repeatability: the two runs side by side", "", *rep, "",
                  f"Largest ratio difference between the runs: {worst['abs']:.3f} ({100 * worst['rel']:.1f}% of run 1's "
                  f"ratio), {worst['case']}.", ""]
    return "\n".join(lines), rows, raw


if __name__ == "__main__":
    main()
