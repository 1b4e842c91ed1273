"""Bring what a slice finished in one reproduction folder into another: complete runs whole, and the finished seeds
of runs still going; never a checkpoint, a lock, a half-written file or a run made with other settings.

    python tools/land_runs.py ../slice/figures figures          # then redraw the tables and commit:
    mtl-meta reproduce --profile cpu --report-only --no-progress
    git add figures && git commit -m "cpu rerun: ..."

A long profile can run its slices in a second clone, so that the clone you work in stays free and its tests do not
share the cores' time with training. This copies the slice's results into your `figures/` as they finish:

- a run whose `run.json` says `ok`, written after its `results.json`, with no live lock inside: whole;
- of any other run, each seed whose `seedN/seed.json` is newer than its history and summary (an older one belongs
  to a seed being trained again) and holds no live lock: `seed.json`, `history.csv`, `summary.json`.

A run already complete in the destination is left as it is, so the command can be repeated after every seed. Both
sides must describe the same runs: where the destination's complete run has another `config_hash`, or one of its
seeds another identity (the settings, data and test that made it), than the slice's, nothing is copied and one line
names the run. The destination's writer lock is held throughout, so no `mtl-meta reproduce` writes it meanwhile.
Nothing is deleted from the source.
"""
import argparse
import json
import shutil
import socket
import sys
from pathlib import Path

from mtl_meta.core import LOCK_NAME, MtlMetaError, OutputLock, _pid_alive   # the lock's own liveness test

SEED_FILES = ("history.csv", "summary.json", "seed.json")   # what a finished seed keeps, seed.json (its mark) last
STAGING = ".landing"   # beside runs/ in the destination, never inside it (git ignores it)


class Conflict(Exception):
    "The two folders describe a run differently: landing would mix settings."


def _readable(path: Path) -> dict | None:
    "The JSON object in `path`; None when it is missing, unreadable or not an object (a file still being written)."
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("-inf")


def _live_lock(folder: Path, recursive: bool = False) -> bool:
    """Whether a writer lock in `folder` (or below it) may belong to a live process: one recorded by a process of
    this host that has ended is stale; one of another host, or unreadable, counts as live."""
    for lock in (folder.rglob(LOCK_NAME) if recursive else [folder / LOCK_NAME]):
        if not lock.is_file():
            continue
        owner = _readable(lock) or {}
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or _pid_alive(pid):
            return True
    return False


def complete(run: Path, training: bool = True) -> bool:
    """Whether the run folder `run` holds a finished run: `run.json` with status ok and a readable `results.json`.
    Where training may still go on (`training`: the slice's side), also no live lock inside and `run.json` written
    after `results.json` (a run being trained again keeps its old `run.json` until it ends). A checkout sets its
    own file times, so the destination's committed runs are judged by their records alone."""
    record = _readable(run / "run.json")
    return (bool(record) and record.get("status") == "ok" and _readable(run / "results.json") is not None
            and (not training or (_mtime(run / "run.json") >= _mtime(run / "results.json")
                                  and not _live_lock(run, recursive=True))))


def finished_seed(seed: Path, training: bool = True) -> bool:
    """Whether `seed` is a finished seed: a readable `seed.json`; where training may still go on (`training`), also
    no live lock and a `seed.json` no older than its other files (an older one belongs to a seed trained again)."""
    return _readable(seed / "seed.json") is not None and (not training or (
        not _live_lock(seed) and all(_mtime(seed / "seed.json") >= _mtime(seed / n) for n in SEED_FILES[:-1])))


def _identity(seed: Path) -> object:
    "The identity a finished seed records (None without one)."
    return (_readable(seed / "seed.json") or {}).get("identity")


def _check_same(src_run: Path, dst_run: Path) -> None:
    "Raise `Conflict` where the destination's run or its seeds were made otherwise than the slice's."
    src_hash, dst_hash = ((_readable(r / "run.json") or {}).get("config_hash") for r in (src_run, dst_run))
    if complete(src_run) and complete(dst_run, training=False) and src_hash != dst_hash:
        raise Conflict(f"run {dst_run.name} was made with other settings here (config_hash {dst_hash}) than in the "
                       f"slice ({src_hash})")
    for seed in sorted(dst_run.glob("seed*")):
        mine = _identity(seed)
        if mine is None or not (src_run / seed.name / "seed.json").is_file():
            continue
        theirs = _identity(src_run / seed.name)
        if theirs != mine:
            raise Conflict(f"{dst_run.name}/{seed.name} was made with other settings here than in the slice")


def _copy_atomically(src: Path, dst: Path) -> None:
    "Copy the file `src` to `dst` through a temporary beside it, so `dst` is never half-written."
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}{STAGING}")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _transient(name: str) -> bool:
    "A file no commit should hold: a checkpoint, a lock or other dotfile, a half-written temporary."
    return name.endswith((".pt", ".tmp")) or name.startswith(".")


def _land_run(run: Path, target: Path, staging: Path) -> None:
    "Copy the complete run `run` to `target` through `staging`, replacing the seeds landed there before."
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run, staging, ignore=lambda _, names: [n for n in names if _transient(n)])
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(target)


def land(src: Path, dst: Path) -> list[str]:
    """Copy the complete runs and the finished seeds of `src/runs` into `dst/runs`, holding `dst`'s writer lock;
    return one line per run or seed landed ("complete NAME", "seed NAME/seedN"). Raises `Conflict` (nothing
    copied) where the two folders describe a run differently."""
    if not (src / "runs").is_dir():
        raise SystemExit(f"land_runs.py: {src} has no runs/ folder: give the slice's reproduction folder "
                         "(the --out of its `mtl-meta reproduce`, e.g. ../slice/figures)")
    if src.resolve() == dst.resolve():
        raise SystemExit(f"land_runs.py: {src} is both the source and the destination: give the slice's folder first")
    dst.mkdir(parents=True, exist_ok=True)
    runs = sorted(p for p in (src / "runs").iterdir() if p.is_dir())
    with OutputLock(dst, option="the destination"):
        for run in runs:
            _check_same(run, dst / "runs" / run.name)
        shutil.rmtree(dst / STAGING, ignore_errors=True)   # what an interrupted landing left
        done = []
        for run in runs:
            target = dst / "runs" / run.name
            if complete(target, training=False):
                continue
            if complete(run):
                _land_run(run, target, dst / STAGING / run.name)
                done.append(f"complete {run.name}")
                continue
            for seed in sorted(s for s in run.glob("seed*") if s.is_dir()):
                if finished_seed(seed) and not finished_seed(target / seed.name, training=False):
                    for name in SEED_FILES:
                        if (seed / name).is_file():
                            _copy_atomically(seed / name, target / seed.name / name)
                    done.append(f"seed {run.name}/{seed.name}")
        shutil.rmtree(dst / STAGING, ignore_errors=True)
    return done


def cli(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="the slice's reproduction folder (e.g. ../slice/figures)")
    ap.add_argument("destination", nargs="?", default="figures", help="the folder to land in (default: figures)")
    args = ap.parse_args(argv)
    try:
        lines = land(Path(args.source), Path(args.destination))
    except Conflict as e:
        sys.exit(f"land_runs.py: {e}: nothing landed; land from a slice of the same profile and settings, or "
                 f"remove the run from {args.destination}/runs if the slice's is the one you want")
    except MtlMetaError as e:
        sys.exit(f"land_runs.py: {e}")
    print("\n".join(lines) if lines else "nothing new: every complete run and finished seed is already there")


if __name__ == "__main__":
    cli(sys.argv[1:])
