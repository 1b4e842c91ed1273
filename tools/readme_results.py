"""Print the README's generated text (Markdown) from a reproduction folder.

    python tools/readme_results.py figures/cpu-2026-11          # the "Results" section of a profile's folder
    python tools/readme_results.py figures --fewshot-only       # the same without theory and sinusoid
    python tools/readme_results.py --progress figures           # how far a profile's (re)run has got
    python tools/readme_results.py --progress figures --update nbs/index.ipynb   # paste it into the notebook

The text goes into a markdown cell of `nbs/index.ipynb` (which generates README.md: `make readme`), so the
numbers quoted in the README are exactly those in the committed tables. With `--update NOTEBOOK` it replaces
the text between the two marker comments that name the same command, e.g.
`<!-- BEGIN readme_results.py --progress figures -->` and `<!-- END readme_results.py --progress figures -->`.
Every link and image path is the folder as given (relative to the repository root, where README.md is). The
theory and sinusoid results are read from `--theory DIR` (default `figures`), since a frozen profile's folder
holds only its few-shot runs.
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

from mtl_meta.core import markdown_table

SETTING = lambda r: f"{r.ways}-way {r.shots}-shot"
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def _table(header: list[str], rows: list[list[str]]) -> str:
    "A Markdown table of cells already written as text, through the package's one table builder."
    return markdown_table(pd.DataFrame(rows, columns=header))


def _num(v) -> float:
    "A table cell as a float: NaN for an empty, pending or 'never' cell."
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _nan(v) -> bool:
    return math.isnan(_num(v))


def _read_csv(path: Path) -> pd.DataFrame | None:
    "A table of the report, or None where it is missing or empty (a profile whose runs are all pending)."
    if not path.exists() or not path.read_text().strip():
        return None
    return pd.read_csv(path)


def _pending(r) -> str | None:
    "'pending (2 of 5 seeds)' for a row whose status says it is not complete, else None."
    status = str(getattr(r, "status", "") or "")
    if not status.startswith("pending"):
        return None
    m = re.search(r"(\d+ of \d+) seeds", status)
    return "pending" + (f" ({m.group(1)} seeds)" if m else "")


def _ci(r) -> float:
    "The interval a row's mean carries: over seeds with 2 or more, else over test episodes."
    return _num(r.ci95_seeds) if not _nan(r.ci95_seeds) else _num(r.ci95_episodes)


def _with_interval(value: float, lo: float, hi: float) -> str:
    "'1.23 [0.90, 1.60]', or the value alone without an interval; '-' without a value (nothing measured)."
    if _nan(value):
        return "-"
    if _nan(lo) or _nan(hi):
        return f"{_num(value):.2f}"
    return f"{_num(value):.2f} [{_num(lo):.2f}, {_num(hi):.2f}]"


def _p(p: float) -> str:
    "A p-value in as many digits as it needs."
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def priced(table: pd.DataFrame, column: str = "priced_ratio") -> bool:
    """Whether `table` prices update time at the per-update benchmark (its `column` has a number) rather than
    reading the runs' wall-clock, which other work on the machine inflates."""
    return column in table.columns and bool(pd.to_numeric(table[column], errors="coerce").notna().any())


def fewshot_pivot(fs: pd.DataFrame) -> str:
    """method x setting: 'acc ± ci95 (million training images per seed, train s/seed, x MTL's cost)', the cost being
    the priced training time where the table has it (`priced`), else the wall-clock; seeds stopped by the epoch cap
    are counted in the cell; a run that is not complete shows 'pending'."""
    ratio = "priced_ratio" if priced(fs) else "mtl_speedup"
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
            if _pending(r):
                cells.append(_pending(r))
                continue
            n = _num(getattr(r, "train_images", float("nan")))
            images = f"{n / 1e6:.2f} M img, " if not math.isnan(n) else ""
            cap = _num(getattr(r, "seeds_at_cap", float("nan")))
            at_cap = f"; {int(cap)} at the cap" if cap > 0 else ""
            x = _num(getattr(r, ratio))
            cost = f", {x:.2f}x" if not math.isnan(x) else ""   # no MTL run or no benchmark row: no ratio
            cells.append(f"{_num(r.acc):.1f} ± {_ci(r):.1f} ({images}{_num(r.train_seconds):.0f} s{cost}{at_cap})")
        rows.append([f"{m}"] + cells)
    return _table(["method"] + settings, rows)


def _trained_rows(fs: pd.DataFrame) -> pd.DataFrame:
    "The rows of the setting each run was trained in (not the 20-way test of 5-way bodies)."
    if "run_setting" not in fs.columns:
        return fs
    return fs[[f"{r.ways}w{r.shots}s" == str(r.run_setting) for r in fs.itertuples()]]


def stopping_sentence(fs: pd.DataFrame) -> str:
    """How the complete runs stopped: the fewest epochs any early-stopped seed ran at its last learning rate
    (`epochs_after_cut`, over the runs), and which runs had seeds stopped by the epoch cap instead."""
    if "epochs_after_cut" not in fs.columns or "seeds_at_cap" not in fs.columns:
        return ""
    done = _trained_rows(fs)
    done = done[[_pending(r) is None for r in done.itertuples()]]
    if done.empty:
        return ""
    after = sorted({int(_num(v)) for v in done.epochs_after_cut if not _nan(v)})
    text = ""
    if after:
        span = f"{after[0]}" if len(after) == 1 else f"{after[0]} to {after[-1]}"
        text = (f"Stopping: in every run, the seed that stopped earliest after a learning-rate cut ran {span} "
                f"epoch{'s' if after[-1] > 1 else ''} at the reduced rate (`epochs_after_cut`).")
    capped = [f"{r.method} {SETTING(r)} ({int(_num(r.seeds_at_cap))} of {int(_num(r.seeds))} seeds)"
              for r in done.itertuples() if _num(r.seeds_at_cap) > 0]
    text += (" Seeds stopped by the epoch cap instead (not called converged): " + ", ".join(capped) + "."
             if capped else " No seed reached the epoch cap.")
    return text.strip()


def paired_pivot(paired: pd.DataFrame) -> str:
    """baseline x test setting: MTL minus the baseline, paired per seed, 'difference ± ci95 (verdict, Holm p)' with the
    verdict read from the table (decided on Holm's adjusted p); the comparator first, the baseline best on validation
    marked; a pair that is not complete shows 'pending'."""
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
            verdict = str(r.verdict)
            if verdict.startswith("pending") or _nan(r.difference):
                cells.append("pending")
                continue
            ci = "" if _nan(r.ci95) else f" ± {_num(r.ci95):.1f}"
            p_holm = _num(r.get("p_holm", float("nan")))
            holm = "" if math.isnan(p_holm) else f", Holm p {_p(p_holm)}"
            cells.append(f"{_num(r.difference):+.1f}{ci} ({short.get(verdict, verdict)}{holm})")
        body.append([f"{b}" + (f" ({role})" if role else "")] + cells)
    return _table(["MTL minus"] + head, body)


def baselines_per_setting(paired: pd.DataFrame) -> str:
    "'the seven baselines' (of every setting), in words: how many p-values Holm's adjustment is over."
    counts = sorted(set(paired.groupby(["ways", "shots", "trained"]).baseline.nunique()))
    if len(counts) == 1:
        return f"the {NUMBER_WORDS.get(counts[0], counts[0])} baselines"
    return "the " + " or ".join(str(NUMBER_WORDS.get(c, c)) for c in counts) + " baselines"


def _versus_paper(ratio: float, lo: float, hi: float, lo_p: float, hi_p: float) -> str:
    "Where one of our error-rate ratios stands against the paper's range [lo_p, hi_p]: shown only by a whole interval."
    if math.isnan(lo) or math.isnan(hi):
        side = "above" if ratio > hi_p else "below" if ratio < lo_p else "within"
        return (f"{side} the paper's ratios, with no interval (one seed)" if side == "within" else
                f"{side} the paper's ratios, but with no interval (one seed), so being further off than the paper "
                "is not shown")
    if lo > hi_p:
        return "the whole interval above the paper's ratios: MTL is further behind MetaOptNet than in the paper"
    if hi < lo_p:
        return "the whole interval below the paper's ratios: MTL is further ahead of MetaOptNet than in the paper"
    if lo_p <= ratio <= hi_p:
        return "within the paper's ratios"
    return (f"{'above' if ratio > hi_p else 'below'} the paper's ratios, but the interval overlaps them, so being "
            "further off than the paper is not shown")


def paper_gap_sentence(gaps: pd.DataFrame) -> str:
    """The paper's MTL - MetaOptNet gaps against ours, in points and as ratios of error rates, ours with their
    intervals, and for each whether 'further off than the paper' is shown: only where a whole interval lies outside
    the paper's range of ratios."""
    paper = gaps[gaps.source == "paper"]
    ours = gaps[(gaps.source == "ours") & ~gaps.gap.map(_nan)]
    lo_p, hi_p = paper.error_ratio.min(), paper.error_ratio.max()
    text = (f"In the paper (ResNet-12, four benchmarks), MTL minus MetaOptNet ranges from {paper.gap.min():+.1f} to "
            f"{paper.gap.max():+.1f} points, and MTL's error rate from {lo_p:.2f} to {hi_p:.2f} times MetaOptNet's.")
    if ours.empty:
        return text
    parts = []
    for r in ours.itertuples():
        lo, hi = _num(getattr(r, "error_ratio_lo", float("nan"))), _num(getattr(r, "error_ratio_hi", float("nan")))
        seeds = int(_num(r.seeds))
        parts.append(f"{r.setting} {_num(r.gap):+.1f}" + ("" if _nan(r.ci95) else f" ± {_num(r.ci95):.1f}")
                     + f" points ({seeds} seed{'s' if seeds > 1 else ''}), an error rate "
                     f"{_with_interval(r.error_ratio, lo, hi)} times MetaOptNet-SVM's: "
                     + _versus_paper(_num(r.error_ratio), lo, hi, lo_p, hi_p))
    return text + " Ours (" + ", ".join(sorted(set(ours.benchmark))) + "): " + "; ".join(parts) + "."


def cost_sentences(cost: pd.DataFrame) -> str:
    """One sentence per setting: which methods reached the best baseline's validation accuracy minus 1 point, at what
    cost (images, and seconds of updates priced at the benchmark where the table has them, else wall-clock)."""
    out = []
    bench = priced(cost, "bench_seconds_to_target_minus_1")
    seconds, unit = ("bench_seconds_to_target_minus_1", "s priced") if bench else ("seconds_to_target_minus_1", "s")
    for (w, k), g in cost.groupby(["ways", "shots"], sort=False):
        r0 = g.iloc[0]
        g = g.assign(images_m1=[_num(v) for v in g.images_to_target_minus_1], seconds_m1=[_num(v) for v in g[seconds]])
        hit = g[[not math.isinf(v) and not math.isnan(v) for v in g.images_m1]]
        missed = sorted(set(g.method) - set(hit.method))
        reached = ", ".join(f"{r.method} ({r.images_m1:.3g} images, "
                            + (f"{r.seconds_m1:.0f} {unit})" if not math.isnan(r.seconds_m1) else "not priced)")
                            for r in hit.sort_values("images_m1").itertuples())
        out.append(f"- {w}-way {k}-shot, to {_num(r0.target_val_acc) - 1:.1f} % validation ({r0.target_from}'s best "
                   "minus 1 point, every seed): " + (f"reached by {reached}" if reached else "reached by no method")
                   + (f"; not by every seed of {', '.join(missed)}." if missed else "."))
    return "\n".join(out)


def matched_summary(eff: pd.DataFrame) -> str:
    """Per setting and baseline: MTL's speedup at matched validation accuracy, in images and in time, with the
    Student-t interval of the per-seed log ratios when the table has one. Time is update time priced at the
    benchmark (with the updates it prices) where the table has it (`speedup_bench`), else wall-clock seconds."""
    bench = priced(eff, "speedup_bench")
    rows = []
    for r in eff.itertuples():
        lo = lambda c: getattr(r, c, float("nan"))
        seeds = _num(getattr(r, "seeds", float("nan")))
        time = ([f"{_num(r.mtl_updates):.0f}", f"{_num(r.baseline_updates):.0f}",
                 _with_interval(r.speedup_bench, lo('speedup_bench_lo'), lo('speedup_bench_hi'))] if bench else
                [f"{_num(r.mtl_seconds):.0f}", f"{_num(r.baseline_seconds):.0f}",
                 _with_interval(r.speedup, lo('speedup_lo'), lo('speedup_hi'))])
        rows.append([f"{r.ways}-way {r.shots}-shot", f"{r.baseline}", "-" if math.isnan(seeds) else f"{int(seeds)}",
                     f"{_num(r.matched_val_acc):.1f}", f"{_num(r.mtl_images):.3g}", f"{_num(r.baseline_images):.3g}",
                     _with_interval(r.speedup_images, lo('speedup_images_lo'), lo('speedup_images_hi'))] + time)
    time = (["MTL updates", "baseline updates", "speedup (update time, priced)"] if bench else
            ["MTL s", "baseline s", "speedup (s)"])
    return _table(["setting", "baseline", "seeds", "matched val %", "MTL images", "baseline images", "speedup (images)"]
                  + time, rows)


def speedup_curve_sentences(curve: pd.DataFrame, baselines=("metaoptnet-svm", "maml")) -> str:
    """One line per setting and baseline (of `baselines`): MTL's speedup at the lowest, a middle and the highest
    validation threshold that every seed of both methods reached, and how far each method gets beyond."""
    out = []
    col, unit = ("speedup_bench", "update time (priced)") if priced(curve, "speedup_bench") else ("speedup_seconds", "seconds")
    for b in baselines:
        for (w, k), g in curve[curve.baseline == b].groupby(["ways", "shots"], sort=False):
            both = g[(g.reached == g.seeds) & ~g.speedup_images.map(_nan)].sort_values("threshold")
            if both.empty:
                continue
            picks = both.iloc[sorted({0, len(both) // 2, len(both) - 1})]
            points = "; ".join(f"{r.threshold:g} %: {_with_interval(r.speedup_images, r.speedup_images_lo, r.speedup_images_hi)}"
                               f" in images, {_with_interval(getattr(r, col), getattr(r, col + '_lo'), getattr(r, col + '_hi'))}"
                               f" in {unit}" for r in picks.itertuples())
            seeds = int(both.seeds.iloc[0])
            mtl_top = g[g.mtl_reached == g.seeds].threshold.max()
            base_top = g[g.baseline_reached == g.seeds].threshold.max()
            beyond = ""
            if base_top > mtl_top:
                beyond = f"; every {b} seed reaches at least {base_top:g} %, not every MTL seed gets past {mtl_top:g} %"
            elif mtl_top > base_top:
                beyond = f"; every MTL seed reaches at least {mtl_top:g} %, not every {b} seed gets past {base_top:g} %"
            out.append(f"- {w}-way {k}-shot, against {b} ({seeds} seed{'s' if seeds > 1 else ''}): {points}{beyond}.")
    return "\n".join(out)


def tuning_sentence(text: str) -> str:
    """From a tuning.md: trials per method and setting, and the selected values that sit on the edge of their grid
    (the best value may lie beyond it)."""
    trials: dict = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and "/" in cells[0] and not cells[0].startswith("setting"):
            setting, method = cells[0].rsplit("/", 1)
            trials.setdefault(setting, {}).setdefault(method, 0)
            trials[setting][method] += 1
    if not trials:
        return ""
    parts = []
    for setting, per in trials.items():
        counts = sorted(set(per.values()))
        each = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
        parts.append(f"{sum(per.values())} trials on {setting} validation ({each} per method)")
    out = "Tuning: " + "; ".join(parts) + ", ranked by validation accuracy only."
    edges = re.split(r"\n## [^\n]*edge[^\n]*\n", text, maxsplit=1, flags=re.I)
    if len(edges) == 2:
        bullets = [l[2:].strip() for l in edges[1].split("\n## ")[0].splitlines() if l.startswith("- ")]
        names = []
        for b in bullets:
            m = re.match(r"(\S+)/(\S+): (\S+) = (\S+) is the (highest|lowest) value tried", b)
            names.append(f"{m.group(2)}'s {m.group(3)} = {m.group(4)} ({m.group(5)} tried)" if m else b.split(";")[0])
        if names:
            out += (f" {len(names)} selected value{'s sit' if len(names) > 1 else ' sits'} on the edge of the grid "
                    "searched, so the best value may lie beyond it: " + ", ".join(names) + ".")
    return out


def progress_text(folder: str) -> str:
    """How far a profile's runs have got, from its progress.md (written by `mtl-meta reproduce` from the run
    records): the totals line and the table, with a link to the file."""
    d = Path(folder)
    prefix = d.as_posix()
    path = d / "progress.md"
    if not path.exists():
        return f"No `{prefix}/progress.md`: `mtl-meta reproduce` has not written this folder's progress yet."
    text = path.read_text()
    title, _, rest = text.partition("\n\n")
    profile = re.search(r"`([^`]+)`", title)
    blocks = [b.strip() for b in rest.split("\n\n") if b.strip()]
    totals = next((b for b in blocks if not b.startswith("|")), "")
    table = next((b for b in blocks if b.startswith("|")), "")
    totals = totals.replace("in this folder", f"in `{prefix}/`")
    head = (f"Progress of profile `{profile.group(1)}`" if profile else "Progress") + \
        f", from [`{prefix}/progress.md`]({prefix}/progress.md). "
    return head + totals + ("\n\n" + table if table else "")


def profile_of(folder: Path) -> str | None:
    "The profile named in a folder's reproduction.md, or None."
    path = folder / "reproduction.md"
    if not path.exists():
        return None
    m = re.search(r"profile `([^`]+)`", path.read_text().split("\n", 1)[0])
    return m.group(1) if m else None


def results_text(folder: str, theory: str | None = "figures") -> str:
    """The README's results section from a reproduction folder (few-shot runs) and the theory folder (`theory`
    None: the few-shot results only, for a profile shown beside another that already gives the theory)."""
    d, t = Path(folder), (Path(theory) if theory is not None else None)
    p, tp = d.as_posix(), (t.as_posix() if t is not None else "")
    link = lambda name, where=p: f"[`{where}/{name}`]({where}/{name})"
    out = []
    say = out.append
    profile = profile_of(d)
    if profile:
        say(f"From the tables of profile `{profile}` in `{p}/`; each run's command, parameters, status and code "
            f"commit are in {link('reproduction.md')} and `{p}/runs/*/run.json`.\n")
    fs = _read_csv(d / "fewshot.csv")
    if fs is not None:
        ds = ", ".join(sorted(set(fs.dataset)))
        seeds = "/".join(str(n) for n in sorted(set(fs.seeds.astype(int)), reverse=True))
        ratio = ("its whole training's cost over MTL's, in update time priced at the per-update times benchmarked "
                 "side by side, so that other work on the machine cannot change it (per seed both ran, the ratio of "
                 "training updates times the benchmark's ratio; geometric mean over those seeds, its interval in the "
                 "full table; a cost to reach a given accuracy is the matched-accuracy table below)" if priced(fs) else
                 "the wall-clock's ratio to MTL's (a ratio of means, descriptive only: it has no interval; the cost "
                 "comparison, with intervals, is the matched-accuracy table below)")
        say(f"Few-shot test accuracy (%) on {ds} with Conv-4, mean over {seeds} seeds (per method: `seeds` in the full table) ± 95% "
            "interval (Student t over seeds; over test episodes for a single seed); in brackets the training images "
            f"through the body and the wall-clock per seed, {ratio}, and how many seeds "
            f"were stopped by the epoch cap rather than by early stopping ({int(fs.test_episodes.max())} test "
            f"episodes per seed; full table with both intervals: {link('fewshot.md')}):\n")
        say(fewshot_pivot(fs) + "\n")
        stop = stopping_sentence(fs)
        if stop:
            say(stop + "\n")
    curves = sorted(d.glob("curves-*.png"))
    if curves:
        say(" ".join(f"![validation accuracy against training wall-clock, {c.stem[7:]}]({p}/{c.name})"
                     for c in curves) + "\n")
    paired = _read_csv(d / "paired.csv")
    if paired is not None:
        holm = "p_holm" in paired.columns
        say("MTL minus each baseline in points, paired per seed on the same test episodes (95% Student-t interval over "
            "seeds; the comparator is MetaOptNet-SVM, the paper's MetaOptNet" + (
                f"; verdicts and p-values from paired t-tests over seeds with Holm's adjustment over "
                f"{baselines_per_setting(paired)} of each setting, MTL higher or lower only where the adjusted "
                "p is below 0.05" if holm else "") + f"; full table: {link('paired.md')}):\n")
        say(paired_pivot(paired) + "\n")
    gaps = _read_csv(d / "paper-gaps.csv")
    if gaps is not None:
        say(paper_gap_sentence(gaps) + f" Table: {link('paper-gaps.md')}.\n")
    cost = _read_csv(d / "cost.csv")
    if cost is not None:
        say("Cost to reach the best baseline's best validation accuracy (mean over its seeds) minus 1 point "
            "(training images through the body and " + (
                "the updates priced at the per-update benchmark" if priced(cost, "bench_seconds_to_target_minus_1")
                else "update wall-clock") + ", mean over seeds; a method is counted only if "
            f"every seed got there; full table: {link('cost.md')}):\n")
        say(cost_sentences(cost) + "\n")
    eff = _read_csv(d / "efficiency.csv")
    if eff is not None and "speedup_images" in eff.columns:
        say("MTL's speedup over each baseline at matched validation accuracy (the lowest best validation accuracy "
            "of any seed of the two methods, so every seed of both reaches it; images and " + (
                "updates are means over seeds, and the time is update time priced at the per-update benchmark "
                "(each seed's ratio of updates times the benchmark's paired per-update ratio, its interval widened by "
                "the benchmark's; the runs' wall-clock, which other work on the machine inflated, is in the full "
                "table)" if priced(eff, "speedup_bench") else "seconds are means over seeds")
            + "; the speedup is the geometric mean of the per-seed ratios, in brackets its 95% interval from a "
            f"Student t on the log ratios, none with one seed; {link('efficiency.md')}):\n")
        say(matched_summary(eff) + "\n")
    curve = _read_csv(d / "speedup-curve.csv")
    if curve is not None:
        lines = speedup_curve_sentences(curve)
        if lines:
            say("The speedup depends on the accuracy asked for. MTL's speedup (baseline's cost over MTL's, geometric "
                "mean over seeds with the log-scale t interval" + (
                    "; in update time, priced at the benchmark, its bounds also widened by the benchmark's"
                    if priced(curve, "speedup_bench") else "") + ") at the lowest, a middle and the highest validation "
                "threshold that every seed of both methods reached, against the comparator and MAML (every baseline "
                f"at every threshold: {link('speedup-curve.md')}):\n")
            say(lines + "\n")
    for fig in sorted(d.glob("speedup-*.png")):
        say(f"![MTL's speedup over each baseline against the validation accuracy asked for, {fig.stem[8:]}]"
            f"({p}/{fig.name})\n")
    timing = d / "timing-check.csv"
    if timing.exists():
        flagged = len(_read_csv(timing)) if _read_csv(timing) is not None else 0
        say(f"Timing check ({link('timing-check.md')}): " + (
            "no epoch of any final run took more than twice its run's median epoch, so no run was slowed part of "
            "the way by other work (a whole run on a slower or busier machine is what this check cannot see; tuning "
            "trials are not checked: their seconds are not compared).\n"
            if not flagged else f"{flagged} epoch(s) took more than twice their run's median epoch (other work on "
            "the machine); those runs' seconds are inflated, their images are not.\n"))
    if (d / "tuning.md").exists():
        say((tuning_sentence((d / "tuning.md").read_text()) + " " if tuning_sentence((d / "tuning.md").read_text())
             else "") + f"Every trial and the choice: {link('tuning.md')}.\n")
    for fig in sorted(d.glob("efficiency-*-*.png")):
        say(f"![MTL's validation accuracy against its speedup over MetaOptNet-SVM in training images and in update "
            f"time, {fig.stem[11:]}]({p}/{fig.name})\n")
    for c_path in sorted(d.glob("efficiency-curve-*.csv")):
        c = pd.read_csv(c_path)
        if "method" not in c.columns:   # drawn from the few-shot runs: the figure above shows it
            continue
        say(f"Efficiency curve ({link(c_path.with_suffix('.md').name)}): MTL trained for a fraction of the "
            "baseline's budget.\n")
        say(_table(["method", "meta-batch", "epochs", "train s", "test acc %", "speedup"],
                   [[f"{r.method}", f"{r.meta_batch_size}", f"{r.epochs}", f"{r.train_seconds:.1f}",
                     f"{r.test_acc:.1f} ± {r.ci95:.1f}", f"{r.speedup_of_mtl:.2f}x"] for r in c.itertuples()]) + "\n")
    if t is not None and (t / "sinusoid.csv").exists():
        say(f"Sinusoid regression ({link('sinusoid.md', tp)}):\n")
        say((t / "sinusoid.md").read_text().split("\n\n", 2)[-1].strip() + "\n")
    if t is not None and (t / "theory.md").exists():
        say(f"Theory, measured ({link('theory.md', tp)}):\n")
        text, _, split = (t / "theory.md").read_text().partition("\n## Claim 2 in full")
        say(text.split("\n", 2)[2].strip() + "\n")
        if (t / "theory-ntk.png").exists():
            say(f"![NTK gaps against depth and lambda*tau]({tp}/theory-ntk.png)\n")
        if split:   # claim 2 with a support/query split: the fitted rates only (the grid is in theory.md)
            rates = split.split("Fitted rates", 1)[1].split("\n\n")[:2]
            say("ANIL trained with a support/query split against MTL, infinite width, depth 1 to 64 by lambda*tau 0 to "
                f"0.3 (grid and decomposition in {link('theory.md', tp)}); fitted rates" + rates[0] + "\n")
            say(rates[1].strip() + "\n")
            figs = [f"![{alt}]({tp}/{f})" for f, alt in (("theory-split.png", "ANIL (split) vs MTL over depth and lambda*tau"),
                    ("theory-finite.png", "finite-width networks against the closed forms")) if (t / f).exists()]
            say(" ".join(figs) + "\n")
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
        say("Code version of the few-shot runs (from each `run.json`): " + "; ".join(
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
        say("Compute of the few-shot runs, in training-update time (the `train_seconds` of each seed in "
            f"`{p}/runs/*/results.json`, so validation, testing and set-up come on top, and a resumed run "
            "counts its work once): " + "; ".join(parts) + ".\n")
    return "\n".join(out)


def update_notebook(nb_path: Path, key: str, text: str) -> None:
    """Replace the text between `<!-- BEGIN key -->` and `<!-- END key -->` in the markdown cell that holds them
    (cell ids and everything else kept; written as nbdev writes notebooks)."""
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or begin not in src:
            continue
        before, _, rest = src.partition(begin)
        if end not in rest:
            sys.exit(f"readme_results.py: {nb_path} has {begin!r} but no {end!r}")
        after = rest.partition(end)[2]
        src = f"{before}{begin}\n\n{text.strip()}\n\n{end}{after}"
        cell["source"] = src.splitlines(keepends=True)
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    sys.exit(f"readme_results.py: no markdown cell of {nb_path} holds {begin!r}")


def main(folder: str = "figures", theory: str = "figures") -> None:
    "Print the results section of `folder` (theory and sinusoid from `theory`)."
    print(results_text(Path(folder).as_posix(), theory))


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default="figures", help="the reproduction folder (default: figures)")
    ap.add_argument("--progress", action="store_true", help="print the folder's progress (progress.md) instead")
    ap.add_argument("--theory", default="figures", help="where theory.md and sinusoid.md are (default: figures)")
    ap.add_argument("--fewshot-only", action="store_true",
                    help="leave the theory and sinusoid results out (for a second profile's section)")
    ap.add_argument("--update", metavar="NOTEBOOK", help="paste the text between this command's markers in NOTEBOOK")
    args = ap.parse_args(argv)
    folder = Path(args.folder).as_posix()
    if args.progress:
        text, key = progress_text(folder), f"readme_results.py --progress {folder}"
    else:
        text = results_text(folder, None if args.fewshot_only else args.theory)
        key = f"readme_results.py {folder}" + (" --fewshot-only" if args.fewshot_only else "")
    if args.update:
        update_notebook(Path(args.update), key, text)
    else:
        print(text)


if __name__ == "__main__":
    cli()
