"""Bring what a slice finished in one reproduction folder into another: complete runs whole, and the finished seeds
of runs still going; never a checkpoint, a lock or a half-written file.

    python tools/land_runs.py ../slice/figures figures          # then redraw the tables and commit:
    mtl-meta reproduce --profile cpu --report-only --no-progress
    git add figures && git commit -m "cpu rerun: ..."

A long profile can run its slices in a second clone (`git clone . ../slice`, then `mtl-meta reproduce --profile cpu
--out figures --time-limit 2h` there), so that the clone you work in stays free and its tests do not share the
cores' time with training. This copies the slice's results into your `figures/` as they finish: a run whose
`run.json` says `ok` and whose `results.json` reads, whole; of any other run, each seed with its `seedN/seed.json`
(`seed.json`, `history.csv`, `summary.json`). A run already complete in the destination is left as it is, so the
command can be repeated after every seed. Nothing is deleted from the source.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

SEED_FILES = ("seed.json", "history.csv", "summary.json")   # what a finished seed keeps; its checkpoint stays behind


def _readable(path: Path) -> dict | None:
    "The JSON object in `path`; None when it is missing, unreadable or not an object (a run still being written)."
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def complete(run: Path) -> bool:
    "Whether the run folder `run` holds a finished run: `run.json` with status ok and a readable `results.json`."
    record = _readable(run / "run.json")
    return bool(record) and record.get("status") == "ok" and _readable(run / "results.json") is not None


def _transient(name: str) -> bool:
    "A file no commit should hold: a checkpoint, a lock or other dotfile, a half-written temporary."
    return name.endswith((".pt", ".tmp")) or name.startswith(".")


def _copy_atomically(src: Path, dst: Path) -> None:
    "Copy the file `src` to `dst` through a temporary beside it, so `dst` is never half-written."
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.landing")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def land(src: Path, dst: Path) -> list[str]:
    """Copy the complete runs and the finished seeds of `src/runs` into `dst/runs`; return one line per run or seed
    landed ("complete NAME", "seed NAME/seedN")."""
    if not (src / "runs").is_dir():
        raise SystemExit(f"land_runs.py: {src} has no runs/ folder: give the slice's reproduction folder "
                         "(the --out of its `mtl-meta reproduce`, e.g. ../slice/figures)")
    if src.resolve() == dst.resolve():
        raise SystemExit(f"land_runs.py: {src} is both the source and the destination: give the slice's folder first")
    done = []
    for run in sorted(p for p in (src / "runs").iterdir() if p.is_dir()):
        target = dst / "runs" / run.name
        if complete(target):
            continue
        if complete(run):
            staging = dst / ".landing" / run.name   # outside runs/, so a copy cut short is never read as a run
            shutil.rmtree(staging, ignore_errors=True)
            staging.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(run, staging, ignore=lambda _, names: [n for n in names if _transient(n)])
            shutil.rmtree(target, ignore_errors=True)   # the finished seeds landed before: the whole run replaces them
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(target)
            done.append(f"complete {run.name}")
            continue
        for seed in sorted(s for s in run.glob("seed*") if s.is_dir()):
            if _readable(seed / "seed.json") is None or _readable(target / seed.name / "seed.json") is not None:
                continue
            for name in SEED_FILES:
                if name != "seed.json" and (seed / name).is_file():
                    _copy_atomically(seed / name, target / seed.name / name)
            _copy_atomically(seed / "seed.json", target / seed.name / "seed.json")   # last: it marks the seed done
            done.append(f"seed {run.name}/{seed.name}")
    shutil.rmtree(dst / ".landing", ignore_errors=True)
    return done


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="the slice's reproduction folder (e.g. ../slice/figures)")
    ap.add_argument("destination", nargs="?", default="figures", help="the folder to land in (default: figures)")
    args = ap.parse_args(argv)
    lines = land(Path(args.source), Path(args.destination))
    print("\n".join(lines) if lines else "nothing new: every complete run and finished seed is already there")


if __name__ == "__main__":
    cli(sys.argv[1:])
