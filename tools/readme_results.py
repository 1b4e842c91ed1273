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

from mtl_meta.core import markdown_table

SETTING = lambda r: f"{r.ways}-way {r.shots}-shot"


def _table(header: list[str], rows: list[list[str]]) -> str:
    "A Markdown table of cells already written as text, through the package's one table builder."
    return markdown_table(pd.DataFrame(rows, columns=header))


def _ci(r) -> float:
    "The interval a row's mean carries: over seeds with 2 or more, else over test episodes."
    return r.ci95_seeds if not math.isnan(r.ci95_seeds) else r.ci95_episodes


def fewshot_pivot(fs: pd.DataFrame) -> str:
    "method x setting: 'acc ± ci95 (million training images per seed, train s/seed, x MTL's time)'."
    settings = list(dict.fromkeys(SETTING(r) for r in fs.itertuples()))
    methods = list(dict.fromkeys(fs.method))
    rows = []
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
        rows.append([f"{m}"] + cells)
    return _table(["method"] + settings, rows)


def paired_pivot(paired: pd.DataFrame) -> str:
    """baseline x test setting: MTL minus the baseline, paired per seed, 'difference ± ci95 (verdict)'; the
    comparator first, the baseline best on validation marked."""
    settings = list(dict.fromkeys((r.ways, r.shots, r.trained) for r in paired.itertuples()))
    head = [f"{w}-way {k}-shot" + ("" if t == f"{w}w{k}s" else f" (bodies of {t})") for w, k, t in settings]
    body = []
    short = {"MTL higher": "MTL higher", "MTL lower": "MTL lower", "not significant": "n.s.",
             "one seed: no interval": "1 seed"}
    for b in dict.fromkeys(paired.baseline):
        rows = paired[paired.baseline == b]
        role = rows.role.dropna().astype(str).iloc[0] if rows.role.notna().any() else ""
        cells = []
        for w, k, t in settings:
            r = rows[(rows.ways == w) & (rows.shots == k) & (rows.trained == t)]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            ci = "" if math.isnan(r.ci95) else f" ± {r.ci95:.1f}"
            cells.append(f"{r.difference:+.1f}{ci} ({short.get(r.verdict, r.verdict)})")
        body.append([f"{b}" + (f" ({role})" if role else "")] + cells)
    return _table(["MTL minus"] + head, body)


def paper_gap_sentence(gaps: pd.DataFrame) -> str:
    "The paper's MTL - MetaOptNet gaps against ours, in points and as ratios of error rates."
    paper, ours = gaps[gaps.source == "paper"], gaps[gaps.source == "ours"]
    text = (f"In the paper (ResNet-12, four benchmarks), MTL minus MetaOptNet ranges from {paper.gap.min():+.1f} to "
            f"{paper.gap.max():+.1f} points, and MTL's error rate from {paper.error_ratio.min():.2f} to "
            f"{paper.error_ratio.max():.2f} times MetaOptNet's.")
    if not ours.empty:
        parts = [f"{r.setting} {r.gap:+.1f}" + ("" if math.isnan(r.ci95) else f" ± {r.ci95:.1f}") + " points "
                 f"({int(r.seeds)} seed{'s' if r.seeds > 1 else ''}), an error rate {r.error_ratio:.2f} times "
                 "MetaOptNet-SVM's" for r in ours.itertuples()]
        text += " Ours (" + ", ".join(sorted(set(ours.benchmark))) + "): " + "; ".join(parts) + "."
    return text


def cost_sentences(cost: pd.DataFrame) -> str:
    "One sentence per setting: which methods reached the best baseline's validation accuracy minus 1 point, at what cost."
    out = []
    for (w, k), g in cost.groupby(["ways", "shots"], sort=False):
        r0 = g.iloc[0]
        hit = g[g.images_to_target_minus_1.apply(lambda v: not math.isinf(v) and not math.isnan(v))]
        missed = sorted(set(g.method) - set(hit.method))
        reached = ", ".join(f"{r.method} ({r.images_to_target_minus_1:.3g} images, {r.seconds_to_target_minus_1:.0f} s)"
                            for r in hit.sort_values("images_to_target_minus_1").itertuples())
        out.append(f"- {w}-way {k}-shot, to {r0.target_val_acc - 1:.1f} % validation ({r0.target_from}'s best minus 1 "
                   f"point, every seed): " + (f"reached by {reached}" if reached else "reached by no method")
                   + (f"; not by every seed of {', '.join(missed)}." if missed else "."))
    return "\n".join(out)


def _with_interval(value: float, lo: float, hi: float) -> str:
    "'1.23 [0.90, 1.60]', or the value alone without an interval."
    if math.isnan(lo) or math.isnan(hi):
        return f"{value:.2f}"
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def matched_summary(eff: pd.DataFrame) -> str:
    """Per setting and baseline: MTL's speedup at matched validation accuracy, in images and in seconds, with the
    bootstrap interval over seeds when the table has one."""
    rows = []
    for r in eff.itertuples():
        lo = lambda c: getattr(r, c, float("nan"))
        seeds = getattr(r, "seeds", float("nan"))
        rows.append([f"{r.ways}-way {r.shots}-shot", f"{r.baseline}", "-" if seeds != seeds else f"{int(seeds)}",
                     f"{r.matched_val_acc:.1f}", f"{r.mtl_images:.3g}", f"{r.baseline_images:.3g}",
                     _with_interval(r.speedup_images, lo('speedup_images_lo'), lo('speedup_images_hi')),
                     f"{r.mtl_seconds:.0f}", f"{r.baseline_seconds:.0f}",
                     _with_interval(r.speedup, lo('speedup_lo'), lo('speedup_hi'))])
    return _table(["setting", "baseline", "seeds", "matched val %", "MTL images", "baseline images", "speedup (images)",
                   "MTL s", "baseline s", "speedup (s)"], rows)


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
    if (d / "paired.csv").exists():
        print("MTL minus each baseline in points, paired per seed on the same test episodes (95% Student-t interval over "
              "seeds; the comparator, MetaOptNet-SVM, fixed in advance; full table: [`figures/paired.md`](figures/paired.md)):\n")
        print(paired_pivot(pd.read_csv(d / "paired.csv")) + "\n")
    if (d / "paper-gaps.csv").exists():
        print(paper_gap_sentence(pd.read_csv(d / "paper-gaps.csv")) + " Table: "
              "[`figures/paper-gaps.md`](figures/paper-gaps.md).\n")
    if (d / "cost.csv").exists():
        print("Cost to reach the best baseline's converged validation accuracy minus 1 point (training images "
              "through the body and update wall-clock, mean over seeds; a method is counted only if every seed got "
              "there; full table: [`figures/cost.md`](figures/cost.md)):\n")
        print(cost_sentences(pd.read_csv(d / "cost.csv")) + "\n")
    eff = d / "efficiency.csv"
    if eff.exists() and "speedup_images" in pd.read_csv(eff).columns:
        print("MTL's speedup over each baseline at matched validation accuracy (the lowest best validation accuracy "
              "of any seed of the two methods, so every seed of both reaches it; mean over seeds; in brackets the 95% "
              "bootstrap interval over seeds, resampled in pairs at that fixed threshold; "
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
        print(_table(["method", "meta-batch", "epochs", "train s", "test acc %", "speedup"],
                     [[f"{r.method}", f"{r.meta_batch_size}", f"{r.epochs}", f"{r.train_seconds:.1f}",
                       f"{r.test_acc:.1f} ± {r.ci95:.1f}", f"{r.speedup_of_mtl:.2f}x"] for r in c.itertuples()]) + "\n")
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
    groups: dict = {}   # (kind of run, commit) -> run names: which code made which group of runs
    for r in records:
        if r["config"]["notebook"] != "fewshot.ipynb":
            continue
        code = r.get("code", {})
        version = f"`{code.get('commit', '?')[:7]}`" + (" with uncommitted changes" if code.get("dirty") else "")
        kind = "tuning trials" if r["config"].get("name", "").startswith("tune-") else "final runs"
        groups.setdefault((kind, version), []).append(r["config"].get("name", ""))
    if groups:
        print("Code version of the few-shot runs (from each `run.json`): " + "; ".join(
            f"{kind}: {len(names)} at commit {version}" for (kind, version), names in sorted(groups.items())) + ".\n")
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
