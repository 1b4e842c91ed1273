"""One timing harness for the benchmarks: warm-up, interleaved rounds, paired ratio intervals, adaptive length.

Why our own loop, and not pyperf or `torch.utils.benchmark`:

- pyperf is not installed in the project's environment (`.venv/bin/python -c 'import pyperf'` fails), and it
  would not fit anyway: it runs one benchmark at a time in its own worker processes and compares benchmarks
  after the fact, while what we need is A and B measured *in the same round*, so that a change of machine
  load hits both and cancels in their ratio.
- `torch.utils.benchmark.Timer` / `blocked_autorange` times one statement at a time (no interleaving or
  pairing either), sets torch's thread count itself (`num_threads=1` unless told otherwise: the setting we
  compare), and cannot time work that runs in another process (two runs at once, a configuration with its own
  threads or oneDNN switch).
- What we time is stateful (a training update changes the weights it starts from; a worker process owns its
  own trainer), so the unit of measurement is a block of real updates handed to a callable, and the loop
  around it is a few lines of `time.perf_counter`.

How a comparison runs (`compare`):

1. Warm-up: `warmup_rounds` interleaved rounds of one unit per case (one update, one validation pass, ...),
   not recorded. They absorb one-time costs (first allocations, oneDNN primitive creation, lazy imports,
   caches) for every case alike, and the last one calibrates the block: each case then runs
   ceil(`min_block_s` / its time per unit) units per round, so that one measurement is long against the
   clock's resolution and scheduling jitter.
2. Rounds: every round runs each case once, one after another, and records seconds per unit. Cases are
   interleaved (A B A B ...), never one configuration's repeats in a row, and the order rotates from round to
   round (A B C, B C A, C A B, ...), so that no case always comes first (after the harness's own idle time) or
   always follows the same neighbour.
3. Statistics, per round r: `log(t_case[r] / t_reference[r])`. Each round pairs a case with its reference under
   the same machine state, so the 95% interval of the ratio is Student t on those per-round log ratios
   (exp(mean +- t_{n-1} * sd / sqrt(n))); a case's own time gets the same on its per-round log times (the
   geometric mean and its interval). The median and the inter-quartile range of the per-round times are shown
   as the spread.
4. Adaptive length: rounds are added until every ratio interval lies within +-`target` (5%) of its estimate
   (exp(t * se) - 1 <= target, and, with `absolute=True`, every case's own time too), after at least
   `min_rounds`; or until `budget_s` would be exceeded by another round (its expected length: the mean of the
   rounds so far; two rounds always run, the fewest that give an interval), or `max_rounds`. The result says which, and whether the target was met. (Stopping when the
   intervals are tight makes them a little optimistic; with `min_rounds` of 5 or more the effect is small
   against the +-5% asked for.)
5. Verdict: a case is *faster* than its reference only when the whole interval of its time ratio is below 1,
   *slower* only when it is above 1; otherwise the difference is not shown.

Used by bench_update_time.py, bench_configs.py, bench_algorithms.py, bench_mtl_step.py, bench_loop.py and the
part timings of gpu_checklist.sh (see benchmarks/README.md for the ones that stay off it, and why).

`twice` runs the same comparison twice and tabulates both with the largest ratio difference between them:
the repeatability check. `machine` records what the numbers depend on (CPU model, cores, torch threads,
oneDNN). `no_data` is how every benchmark says in one line (exit status 2) that its data set is missing.
"""
from __future__ import annotations

import csv
import io
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

REPO = Path(__file__).resolve().parents[1]


# ---- statistics -----------------------------------------------------------------------------------------

def _t_central(t: float, df: int) -> float:
    "P(|T| <= t) for Student's t with integer `df` degrees of freedom (exact finite series, A&S 26.7.3-4)."
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:   # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...)), up to cos^(df-2)
        if df == 1:
            return 2 * theta / math.pi
        term, total = math.cos(theta), math.cos(theta)
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        return 2 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0   # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...), up to cos^(df-2)
    for j in range(1, df // 2):
        term *= c2 * (2 * j - 1) / (2 * j)
        total += term
    return s * total


@lru_cache(maxsize=None)
def t_quantile(confidence: float, df: int) -> float:
    "The two-sided Student t critical value: P(|T| <= q) = `confidence` with `df` degrees of freedom."
    if not 0 < confidence < 1 or df < 1:
        raise ValueError(f"need 0 < confidence < 1 and df >= 1, got {confidence}, {df}")
    lo, hi = 0.0, 1.0
    while _t_central(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_central(mid, df) < confidence else (lo, mid)
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class Interval:
    "A positive quantity (a time, a ratio) with its confidence interval, from a Student t on logs."
    estimate: float
    lo: float | None     # None: fewer than two rounds, no interval
    hi: float | None
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        "The interval's relative half-width on the log scale, as a fraction (0.05: within +-5%); inf without one."
        if self.lo is None or self.hi is None:
            return math.inf
        return math.sqrt(self.hi / self.lo) - 1

    def within(self, target: float) -> bool:
        return self.half_width <= target

    def excludes_one(self) -> bool:
        return self.lo is not None and (self.lo > 1 or self.hi < 1)

    def inverse(self) -> "Interval":
        "The interval of 1 / the quantity (a time ratio as a speed-up)."
        return Interval(1 / self.estimate, None if self.hi is None else 1 / self.hi,
                        None if self.lo is None else 1 / self.lo, self.n, self.confidence)

    def scaled(self, k: float) -> "Interval":
        return Interval(k * self.estimate, None if self.lo is None else k * self.lo,
                        None if self.hi is None else k * self.hi, self.n, self.confidence)

    def text(self, fmt: str = ".3f") -> str:
        if self.lo is None:
            return f"{self.estimate:{fmt}} (no interval: 1 round)"
        return f"{self.estimate:{fmt}} [{self.lo:{fmt}}, {self.hi:{fmt}}]"


def log_interval(values, confidence: float = 0.95) -> Interval:
    "Geometric mean of positive `values` and its Student t interval (on their logs)."
    logs = [math.log(v) for v in values]
    n = len(logs)
    if n == 0:
        raise ValueError("no values")
    m = statistics.fmean(logs)
    if n < 2:
        return Interval(math.exp(m), None, None, n, confidence)
    h = t_quantile(confidence, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return Interval(math.exp(m), math.exp(m - h), math.exp(m + h), n, confidence)


def ratio_interval(case, reference, confidence: float = 0.95) -> Interval:
    "The ratio case / reference of paired per-round measurements: Student t on the per-round log ratios."
    if len(case) != len(reference):
        raise ValueError("paired measurements need as many rounds on both sides")
    return log_interval([a / b for a, b in zip(case, reference)], confidence)


def verdict(ratio: Interval, faster: str = "faster", slower: str = "slower") -> str:
    "Of a time ratio (case / reference): faster or slower only when its interval excludes 1."
    if ratio.lo is None:
        return "not shown (1 round)"
    if ratio.hi < 1:
        return faster
    if ratio.lo > 1:
        return slower
    return "no difference shown"


def quartiles(values) -> tuple[float, float, float]:
    "(25th, 50th, 75th percentile) of `values` (inclusive method; a single value is all three)."
    v = sorted(values)
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[0], q[1], q[2]


# ---- the comparison ---------------------------------------------------------------------------------------

Case = Callable[[int], "float | None"]   # run n units; return their seconds, or None for the harness's own clock


@dataclass
class Comparison:
    "The measurements of one `compare` run and what follows from them."
    cases: list[str]
    reference: dict[str, str]          # case -> the case its ratio is taken against (absent: a reference itself)
    seconds: dict[str, list[float]]    # case -> seconds per unit, one value per measured round
    units: dict[str, int]              # case -> units per round
    warmup: dict[str, list[float]]     # case -> seconds per unit in the warm-up rounds (not used in any statistic)
    order: list[tuple[int, str]]       # (round, case) in the order they ran; warm-up rounds have negative numbers
    rounds: int
    target: float
    confidence: float
    absolute: bool
    target_met: bool
    stopped: str                       # "target met", "budget", "max rounds"
    elapsed_s: float
    budget_s: float
    notes: dict = field(default_factory=dict)

    def time(self, case: str) -> Interval:
        "Seconds per unit: geometric mean over rounds with its interval."
        return log_interval(self.seconds[case], self.confidence)

    def ratio(self, case: str) -> Interval | None:
        "Time ratio case / its reference, paired by round; None for a reference."
        ref = self.reference.get(case)
        if ref is None or ref == case:
            return None
        return ratio_interval(self.seconds[case], self.seconds[ref], self.confidence)

    def median(self, case: str) -> float:
        return statistics.median(self.seconds[case])

    def spread(self, case: str) -> tuple[float, float]:
        "The inter-quartile range of the per-round seconds per unit."
        q = quartiles(self.seconds[case])
        return q[0], q[2]

    def tight(self) -> bool:
        return _all_tight(self.seconds, self.reference, self.target, self.confidence, self.absolute)

    def summary(self) -> str:
        "One line: rounds, stop reason, whether the +-target was met."
        ratios = [self.ratio(c) for c in self.cases if self.ratio(c) is not None]
        widest = max((r.half_width for r in ratios), default=0.0)
        what = "ratio intervals" + (" and times" if self.absolute else "")
        met = "met" if self.target_met else "NOT met"
        width = f"widest ratio interval +-{100 * widest:.1f}%" if math.isfinite(widest) else "no interval from 1 round"
        return (f"{self.rounds} interleaved round{'s' if self.rounds != 1 else ''} after warm-up, {self.elapsed_s:.0f} s "
                f"(budget {self.budget_s:.0f} s); stopped: {self.stopped}; target +-{100 * self.target:g}% on the "
                f"{100 * self.confidence:g}% {what}: {met} ({width})")


def _all_tight(seconds, reference, target, confidence, absolute) -> bool:
    for case, values in seconds.items():
        if len(values) < 2:
            return False
        ref = reference.get(case)
        if ref is not None and ref != case and not ratio_interval(values, seconds[ref], confidence).within(target):
            return False
        if absolute and not log_interval(values, confidence).within(target):
            return False
    return True


def compare(cases: Mapping[str, Case], reference: str | Mapping[str, str] | None = None, *,
            warmup_rounds: int = 2, min_block_s: float = 1.0, units: int | Mapping[str, int] | None = None,
            max_units: int = 10_000, min_rounds: int = 5, max_rounds: int = 1000, budget_s: float = 600.0,
            target: float = 0.05, confidence: float = 0.95, absolute: bool = False, rotate: bool = True,
            gap_s: float = 0.0, sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter,
            sleep: Callable[[float], None] = time.sleep, progress: Callable[[str], None] | None = None) -> Comparison:
    """Time `cases` (name -> callable running n units) in interleaved rounds; see the module docstring.

    `reference`: the case every ratio is taken against (default: the first), or a mapping case -> its reference
    (cases not in it get none). `units`: units per round (all cases, or per case), instead of calibrating them
    from the warm-up. A callable may return its own measured seconds (e.g. timed inside a worker process);
    otherwise the harness's clock times the call, with `sync` (e.g. `torch.cuda.synchronize`) before it stops.
    `gap_s`: idle time between two cases (lets another process's spinning threads go to sleep)."""
    names = list(cases)
    if not names:
        raise ValueError("nothing to compare")
    if reference is None:
        refs = {c: names[0] for c in names[1:]}
    elif isinstance(reference, str):
        if reference not in cases:
            raise ValueError(f"reference {reference!r} is not one of the cases")
        refs = {c: reference for c in names if c != reference}
    else:
        refs = {c: r for c, r in reference.items() if c != r}
        bad = [r for r in (*refs, *refs.values()) if r not in cases]
        if bad:
            raise ValueError(f"unknown case(s) in reference: {', '.join(map(repr, bad))}")
    if min_rounds < 1 or max_rounds < 1 or warmup_rounds < 0 or min_block_s < 0 or target <= 0:
        raise ValueError("need min_rounds, max_rounds >= 1, warmup_rounds >= 0, min_block_s >= 0, target > 0")
    t_start = clock()
    order: list[tuple[int, str]] = []

    def run(name: str, n: int, rnd: int) -> float:
        if gap_s and order:
            sleep(gap_s)
        order.append((rnd, name))
        t0 = clock()
        own = cases[name](n)
        if sync is not None:
            sync()
        took = clock() - t0
        s = took if own is None else float(own)
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"case {name!r} gave a non-positive time ({s!r} s for {n} units)")
        return s / n

    def sequence(rnd: int) -> list[str]:
        k = rnd % len(names) if rotate else 0
        return names[k:] + names[:k]

    warm = {c: [] for c in names}
    for w in range(warmup_rounds):
        for name in sequence(w):
            warm[name].append(run(name, 1, -(warmup_rounds - w)))
    if units is None:
        n_units = {c: max(1, min(max_units, math.ceil(min_block_s / warm[c][-1] - 1e-9))) if warm[c] else 1 for c in names}
    elif isinstance(units, int):
        n_units = {c: units for c in names}
    else:
        n_units = {c: int(units.get(c, 1)) for c in names}
    if any(n < 1 for n in n_units.values()):
        raise ValueError("units per round must be at least 1")
    if progress:
        progress(f"warm-up done in {clock() - t_start:.1f} s; units per round: "
                 + ", ".join(f"{c} {n}" for c, n in n_units.items()))

    seconds = {c: [] for c in names}
    round_s: list[float] = []
    stopped, met = "max rounds", False
    for rnd in range(max_rounds):
        if len(round_s) >= 2 and clock() - t_start + statistics.fmean(round_s) > budget_s:   # 2 rounds: an interval
            stopped = "budget"
            break
        t0 = clock()
        for name in sequence(rnd + warmup_rounds):
            seconds[name].append(run(name, n_units[name], rnd))
        round_s.append(clock() - t0)
        if rnd + 1 >= min_rounds and _all_tight(seconds, refs, target, confidence, absolute):
            stopped, met = "target met", True
            break
        if progress:
            progress(f"round {rnd + 1}: {round_s[-1]:.1f} s, {clock() - t_start:.0f} s so far")
    rounds = len(round_s)
    return Comparison(names, refs, seconds, n_units, warm, order, rounds, target, confidence, absolute, met, stopped,
                      clock() - t_start, budget_s)


# ---- tables -------------------------------------------------------------------------------------------------

def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(result: Comparison, *, label: str = "case", unit: str = "ms", scale: float = 1e3, speedup: bool = False,
          names: Mapping[str, str] | None = None, extra: Mapping[str, list] | None = None,
          extra_head: list[str] = (), ratio_label: str | None = None) -> list[str]:
    """Markdown rows: per case the median time per unit, the spread (IQR), the geometric mean with its interval,
    the ratio to its reference with its interval (as a speed-up, reference / case, when `speedup`) and the verdict."""
    what = ratio_label or ("speed-up vs reference" if speedup else "time ratio vs reference")
    head = [label, f"median {unit}", f"IQR {unit}", f"mean {unit} [{100 * result.confidence:g}% CI]",
            f"{what} [{100 * result.confidence:g}% CI]", "verdict", "units x rounds", *extra_head]
    lines = [_row(head), "|" + " --- |" * len(head)]
    for c in result.cases:
        lo, hi = result.spread(c)
        r = result.ratio(c)
        if r is None:
            ratio_txt, v = "reference", ""
        else:
            ratio_txt = (r.inverse() if speedup else r).text(".3f") + (f" vs {result.reference[c]}"
                                                                       if len(set(result.reference.values())) > 1 else "")
            v = verdict(r)
        lines.append(_row([(names or {}).get(c, c), f"{scale * result.median(c):.2f}", f"{scale * lo:.2f}-{scale * hi:.2f}",
                           result.time(c).scaled(scale).text(".2f"), ratio_txt, v,
                           f"{result.units[c]} x {len(result.seconds[c])}", *(extra or {}).get(c, [])]))
    return lines


def records(result: Comparison, scale: float = 1e3) -> list[dict]:
    "One machine-readable dict per case (times in seconds x `scale`)."
    out = []
    for c in result.cases:
        t, r = result.time(c), result.ratio(c)
        q = quartiles(result.seconds[c])
        out.append({"case": c, "mean": t.estimate * scale, "lo": _s(t.lo, scale), "hi": _s(t.hi, scale),
                    "median": q[1] * scale, "p25": q[0] * scale, "p75": q[2] * scale,
                    "reference": result.reference.get(c, ""), "ratio": r.estimate if r else 1.0,
                    "ratio_lo": r.lo if r else "", "ratio_hi": r.hi if r else "",
                    "verdict": verdict(r) if r else "reference", "rounds": len(result.seconds[c]),
                    "units_per_round": result.units[c], "target_met": result.target_met})
    return out


def _s(v, k):
    return "" if v is None else v * k


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _write(path, buf.getvalue())


def _write(path: Path, text: str) -> None:
    "Atomic write (the package's helper when importable)."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from mtl_meta.core import atomic_write_text
        atomic_write_text(path, text)
    except ImportError:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


write_text = _write


# ---- repeatability -------------------------------------------------------------------------------------------

def twice(run: Callable[[], Comparison], progress: Callable[[str], None] | None = None) -> tuple[Comparison, Comparison]:
    "The same comparison run twice in a row (each with its own warm-up)."
    first = run()
    if progress:
        progress("first run done: " + first.summary())
    return first, run()


def twice_table(a: Comparison, b: Comparison, *, speedup: bool = False, names: Mapping[str, str] | None = None
                ) -> tuple[list[str], dict]:
    """Both runs' ratios side by side, their difference, and whether the second run's ratio lies inside the
    first run's interval; returns the rows and the largest differences (absolute and relative)."""
    what = "speed-up" if speedup else "time ratio"
    head = ["case", f"run 1 {what} [CI]", f"run 2 {what} [CI]", "difference", "run 2 inside run 1's CI",
            "verdicts agree"]
    lines = [_row(head), "|" + " --- |" * len(head)]
    worst = {"abs": 0.0, "rel": 0.0, "case": ""}
    for c in a.cases:
        ra, rb = a.ratio(c), b.ratio(c) if c in b.cases else None
        if ra is None or rb is None:
            continue
        if speedup:
            ra, rb = ra.inverse(), rb.inverse()
        d = rb.estimate - ra.estimate
        rel = abs(rb.estimate / ra.estimate - 1)
        if rel >= worst["rel"]:
            worst = {"abs": abs(d), "rel": rel, "case": c}
        inside = "n/a" if ra.lo is None else ("yes" if ra.lo <= rb.estimate <= ra.hi else "no")
        va, vb = verdict(a.ratio(c)), verdict(b.ratio(c))
        lines.append(_row([(names or {}).get(c, c), ra.text(".3f"), rb.text(".3f"), f"{d:+.3f}", inside,
                           "yes" if va == vb else f"no ({va} / {vb})"]))
    return lines, worst


# ---- machine, data, process ----------------------------------------------------------------------------------

def lscpu() -> dict:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def machine(threads: int | None = None) -> dict:
    """What the timings depend on: CPU model, logical CPUs and physical cores, torch threads, oneDNN,
    versions, load average when measured, commit."""
    info = lscpu()
    try:
        cores = int(info.get("Core(s) per socket", 0)) * int(info.get("Socket(s)", 0)) or None
    except ValueError:
        cores = None
    out = {"cpu_model": info.get("Model name") or platform.processor() or "unknown", "logical_cpus": os.cpu_count(),
           "physical_cores": cores, "python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch
        out.update({"torch": torch.__version__, "torch_threads": threads or torch.get_num_threads(),
                    "onednn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)})
    except ImportError:
        pass
    try:
        out["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    out["commit"] = commit()
    return out


def machine_line(m: dict) -> str:
    return (f"{m.get('cpu_model')}, {m.get('physical_cores') or '?'} cores / {m.get('logical_cpus')} logical CPUs; "
            f"torch {m.get('torch')}, {m.get('torch_threads')} threads, oneDNN {'on' if m.get('onednn') else 'off'}; "
            f"load average {m.get('load_average_1m', '?')} at the start; commit {m.get('commit')}")


def commit() -> str:
    def git(*a):
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=REPO).stdout.strip()
    try:
        head = git("rev-parse", "HEAD") or os.environ.get("GIT_COMMIT", "unknown")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except OSError:
        return os.environ.get("GIT_COMMIT", "unknown")
    return head + (" (with uncommitted changes)" if dirty else "")


def no_data(prog: str, message) -> "NoReturn":
    "Say in one line that the data is missing, and exit with status 2."
    text = " ".join(str(message).split())
    print(f"{prog}: no data: {text}", file=sys.stderr)
    sys.exit(2)


def check_data(prog: str, dataset: str = "omniglot-minimal", data_root: str | None = None,
               splits=("train", "val")) -> None:
    "Load `splits` of `dataset` once (fills the cache); exit with one line and status 2 if the data is not there."
    from mtl_meta.core import MtlMetaError
    from mtl_meta.data import load_split
    try:
        for s in splits:
            load_split(dataset, s, data_root=data_root or None)
    except (MtlMetaError, OSError) as e:
        no_data(prog, e)


def fail(prog: str, message) -> "NoReturn":
    "Any other stop: one line, exit status 1."
    print(f"{prog}: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(1)
