"""Print the README's "Results" section (Markdown) from a reproduction folder.

    python tools/readme_results.py figures > /tmp/results.md

The text is pasted into a markdown cell of `nbs/index.ipynb` (which generates README.md), so the
numbers quoted in the README are exactly those in the committed `figures/` tables.
"""
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

SETTING = lambda r: f"{r.ways}-way {r.shots}-shot"


def _ci(r) -> float:
    "The interval a row's mean carries: over seeds with 2 or more, else over test episodes."
    return r.ci95_seeds if not math.isnan(r.ci95_seeds) else r.ci95_episodes


def fewshot_pivot(fs: pd.DataFrame) -> str:
    "method x setting: 'acc ± ci95 (million training images per seed, train s/seed, x MTL's time)'."
    settings = list(dict.fromkeys(SETTING(r) for r in fs.itertuples()))
    methods = list(dict.fromkeys(fs.method))
    lines = ["| method | " + " | ".join(settings) + " |", "|" + " --- |" * (1 + len(settings))]
    for m in methods:
        cells = []
        for s in settings:
            row = [r for r in fs.itertuples() if r.method == m and SETTING(r) == s]
            if not row:
                cells.append("-")
                continue
            r = row[0]
            n = getattr(r, "train_images", float("nan"))
            images = f"{n / 1e6:.2f} M img, " if not math.isnan(n) else ""
            cells.append(f"{r.acc:.1f} ± {_ci(r):.1f} ({images}{r.train_seconds:.0f} s, {r.mtl_speedup:.2f}x)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_vs_mtl(fs: pd.DataFrame) -> str:
    """Per setting: MTL against the most accurate baseline; the gap's interval combines both means' intervals
    (independent seeds: the square root of the sum of squares); cost ratios are the baseline's over MTL's."""
    images = "train_images" in fs.columns and fs.train_images.notna().all()
    lines = ["| setting | seeds | MTL | best baseline | gap (points) | baseline time / MTL time |"
             + (" baseline images / MTL images |" if images else ""),
             "| --- | --- | --- | --- | --- | --- |" + (" --- |" if images else "")]
    for s, g in fs.groupby(fs.apply(SETTING, axis=1), sort=False):
        if not (g.method == "mtl").any() or not (g.method != "mtl").any():
            continue   # a setting with MTL alone, or without MTL, has no gap to report (yet)
        mtl = g[g.method == "mtl"].iloc[0]
        base = g[g.method != "mtl"].sort_values("acc").iloc[-1]
        gap_ci = math.hypot(_ci(mtl), _ci(base))
        lines.append(f"| {s} | {int(mtl.seeds)} | {mtl.acc:.1f} ± {_ci(mtl):.1f} | {base.method} {base.acc:.1f} ± {_ci(base):.1f} | "
                     f"{mtl.acc - base.acc:+.1f} ± {gap_ci:.1f} | {base.train_seconds / mtl.train_seconds:.2f} |"
                     + (f" {base.train_images / mtl.train_images:.2f} |" if images else ""))
    return "\n".join(lines)


def cost_summary(cost: pd.DataFrame) -> str:
    "Per setting: what each method paid to reach the best baseline's validation accuracy minus 1 point."
    lines = ["| setting | target (val %) | method | images | seconds | images / MTL's | seconds / MTL's |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    num = lambda v, f: "never" if math.isinf(v) else ("-" if math.isnan(v) else format(v, f))
    rat = lambda v: "-" if math.isnan(v) or math.isinf(v) or v == 0 else f"{v:.2f}"
    for r in cost.itertuples():
        lines.append(f"| {r.ways}-way {r.shots}-shot | {r.target_val_acc - 1:.1f} ({r.target_from} - 1) | {r.method} | "
                     f"{num(r.images_to_target_minus_1, '.3g')} | {num(r.seconds_to_target_minus_1, '.0f')} | "
                     f"{rat(r.images_ratio_to_target_minus_1)} | {rat(r.seconds_ratio_to_target_minus_1)} |")
    return "\n".join(lines)


def matched_summary(eff: pd.DataFrame) -> str:
    "Per setting and baseline: MTL's speedup at matched validation accuracy, in images and in seconds."
    lines = ["| setting | baseline | matched val % | MTL images | baseline images | speedup (images) | MTL s | baseline s | speedup (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in eff.itertuples():
        lines.append(f"| {r.ways}-way {r.shots}-shot | {r.baseline} | {r.matched_val_acc:.1f} | {r.mtl_images:.3g} | "
                     f"{r.baseline_images:.3g} | {r.speedup_images:.2f} | {r.mtl_seconds:.0f} | {r.baseline_seconds:.0f} | "
                     f"{r.speedup:.2f} |")
    return "\n".join(lines)


def main(folder: str) -> None:
    d = Path(folder)
    fs = pd.read_csv(d / "fewshot.csv")
    ds = ", ".join(sorted(set(fs.dataset)))
    seeds = "/".join(str(n) for n in sorted(set(fs.seeds.astype(int)), reverse=True))
    print(f"Few-shot test accuracy (%) on {ds} with Conv-4, mean over {seeds} seeds (see the table below) ± 95% "
          "interval (Student t over seeds; over test episodes for a single seed); in brackets the training images "
          "through the body and the wall-clock per seed, and the wall-clock's ratio to MTL's "
          f"({int(fs.test_episodes.max())} test episodes per seed; full table with both intervals: "
          "[`figures/fewshot.md`](figures/fewshot.md)):\n")
    print(fewshot_pivot(fs) + "\n")
    curves = sorted(d.glob("curves-*.png"))
    if curves:
        print(" ".join(f"![validation accuracy against training wall-clock, {c.stem[7:]}](figures/{c.name})"
                       for c in curves) + "\n")
    print("MTL against the most accurate baseline in each setting:\n")
    print(best_vs_mtl(fs) + "\n")
    if (d / "cost.csv").exists():
        print("Cost to reach the best baseline's converged validation accuracy minus 1 point (training images "
              "through the body and wall-clock, mean over seeds; never: some seed never reached it; full table with the exact "
              "target: [`figures/cost.md`](figures/cost.md)):\n")
        print(cost_summary(pd.read_csv(d / "cost.csv")) + "\n")
    eff = d / "efficiency.csv"
    if eff.exists() and "speedup_images" in pd.read_csv(eff).columns:
        print("MTL's speedup over each baseline at matched validation accuracy (the lowest best validation accuracy "
              "of any seed of the two methods, so every seed of both reaches it; mean over seeds; "
              "[`figures/efficiency.md`](figures/efficiency.md)):\n")
        print(matched_summary(pd.read_csv(eff)) + "\n")
    if (d / "timing-check.csv").exists():
        flagged = len(pd.read_csv(d / "timing-check.csv"))
        print("Timing check ([`figures/timing-check.md`](figures/timing-check.md)): " + (
            "no epoch of any final run took more than twice its run's median epoch, so no other work inflated the seconds above (tuning trials are not checked: their seconds are not compared).\n"
            if not flagged else f"{flagged} epoch(s) took more than twice their run's median epoch (other work on "
            "the machine); those runs' seconds are inflated, their images are not.\n"))
    if (d / "tuning.md").exists():
        print("Every method's hyper-parameters were chosen on validation with the same number of trials: "
              "[`figures/tuning.md`](figures/tuning.md).\n")
    for fig in sorted(d.glob("efficiency-*-*.png")):
        print(f"![MTL's validation accuracy against its speedup over MetaOptNet-SVM, {fig.stem[11:]}](figures/{fig.name})\n")
    for curve in sorted(d.glob("efficiency-curve-*.csv")):
        c = pd.read_csv(curve)
        if "method" not in c.columns:   # drawn from the few-shot runs: the figure above shows it
            continue
        print(f"Efficiency curve ([`{curve.with_suffix('.md').name}`](figures/{curve.with_suffix('.md').name})): "
              "MTL trained for a fraction of the baseline's budget.\n")
        lines = ["| method | meta-batch | epochs | train s | test acc % | speedup |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r.method} | {r.meta_batch_size} | {r.epochs} | {r.train_seconds:.1f} | {r.test_acc:.1f} ± {r.ci95:.1f} "
                  f"| {r.speedup_of_mtl:.2f}x |" for r in c.itertuples()]
        print("\n".join(lines) + "\n")
    if (d / "sinusoid.csv").exists():
        print("Sinusoid regression ([`figures/sinusoid.md`](figures/sinusoid.md)):\n")
        body = (d / "sinusoid.md").read_text().split("\n\n", 2)[-1].strip()
        print(body + "\n")
    if (d / "theory.md").exists():
        print("Theory, measured ([`figures/theory.md`](figures/theory.md)):\n")
        text, _, split = (d / "theory.md").read_text().partition("\n## Claim 2 in full")
        print(text.split("\n", 2)[2].strip() + "\n")
        if (d / "theory-ntk.png").exists():
            print("![NTK gaps against depth and lambda*tau](figures/theory-ntk.png)\n")
        if split:   # claim 2 with a support/query split: the fitted rates only (the grid is in theory.md)
            rates = split.split("Fitted rates", 1)[1].split("\n\n")[:2]
            print("ANIL trained with a support/query split against MTL, infinite width, depth 1 to 64 by lambda*tau 0 to "
                  "0.3 (grid and decomposition in [`figures/theory.md`](figures/theory.md)); fitted rates" + rates[0] + "\n")
            print(rates[1].strip() + "\n")
            figs = [f"![{alt}](figures/{f})" for f, alt in (("theory-split.png", "ANIL (split) vs MTL over depth and lambda*tau"),
                    ("theory-finite.png", "finite-width networks against the closed forms")) if (d / f).exists()]
            print(" ".join(figs) + "\n")
    records = [json.loads(f.read_text()) for f in sorted((d / "runs").glob("*/run.json"))]
    trained = {json.dumps(r.get("code", {}), sort_keys=True) for r in records if r["config"]["notebook"] == "fewshot.ipynb"}
    if trained:
        versions = [json.loads(v) for v in sorted(trained)]
        print("Code version of the few-shot runs (from each `run.json`): " + ", ".join(
            f"commit `{v.get('commit', '?')[:7]}`" + (" with uncommitted changes" if v.get("dirty") else "")
            for v in versions) + ".\n")
    update_minutes = {}   # experiment -> (seeds, minutes of training updates), from every ok run's results
    for res_file in sorted((d / "runs").glob("*/results.json")):
        if json.loads((res_file.parent / "run.json").read_text()).get("status") != "ok":
            continue   # failed or still running: not part of the profile's results
        res = json.loads(res_file.read_text())
        if res.get("experiment") in ("fewshot", "tuning"):
            seeds, minutes = update_minutes.get(res["experiment"], (0, 0.0))
            update_minutes[res["experiment"]] = (seeds + len(res["per_seed"]),
                                                 minutes + sum(s["train_seconds"] for s in res["per_seed"]) / 60)
    if update_minutes:
        parts = [f"{minutes:.0f} minutes over " + (f"the {seeds} tuning trials" if kind == "tuning" else f"{seeds} seeds of final runs")
                 for kind, (seeds, minutes) in sorted(update_minutes.items())]
        print("Compute of the few-shot runs, in training-update time (the `train_seconds` of each seed in "
              "`figures/runs/*/results.json`, so validation, testing and set-up come on top, and a resumed run "
              "counts its work once): " + "; ".join(parts) + ".\n")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "figures")
