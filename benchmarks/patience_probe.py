"""Would more patience change the verdict? Retrain committed `cpu`-profile runs with a longer plateau
schedule and compare their test accuracy with the profile's own schedule on the same test episodes.

The profile cuts the learning rate by 10 at the third epoch in a row without a validation gain and
stops at the fourth (at most 30 epochs). The `patient` variant cuts at the fifth and stops at the
tenth (at most twice the epochs: 60). Everything else (hyper-parameters chosen on validation, rotated classes,
20-way training episodes, validation) is read from `FIGURES/runs/NAME/run.json`, so each `profile`
row retrains exactly one seed of a committed run. Training goes through the `mtl-meta` command line
and is resumable: rerun the same command to continue, finished runs are reused.

    python benchmarks/patience_probe.py [--methods mtl metaoptnet-rr] [--setting 5w1s] [--seed 0]
        [--figures figures/cpu-2026-11] [--out runs/patience-probe] [--episodes 1000]

Writes OUT/patience-probe.md (and prints it): epochs trained, best validation accuracy, training
images and test accuracy with its 95% interval over test episodes, per method and schedule. The test
episodes are the final runs' own for that seed, so each `profile` row can be matched to the table.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from mtl_meta.core import atomic_write_text
from mtl_meta.profiles import TEST_SEED_OFFSET
from mtl_meta.runs import code_version


def patient(config: dict) -> dict:
    "The longer plateau schedule: cut the learning rate at the 5th flat epoch, stop at the 10th, twice the epochs."
    return {"lr_patience": 4, "early_stop_patience": 10, "epochs": 2 * config["epochs"]}


SCHEDULES = {"profile": lambda config: {}, "patient": patient}   # training-config overrides of each schedule


def train_command(params: dict, schedule: str, seed: int, out: Path) -> list[str]:
    "The `mtl-meta train` command of one seed of a committed run (its notebook `params`) under `schedule`."
    if params.get("backbone_options"):
        sys.exit(f"the committed run sets backbone options {params['backbone_options']}, which mtl-meta train cannot take")
    if seed not in params.get("seeds", [seed]):
        sys.exit(f"seed {seed} is not one of the committed run's seeds {params['seeds']}: pass --seed with one of them")
    trial = {k: v for k, v in params.get("trial", {}).items() if k not in ("lr", "head_lr")}
    config = {**params["train_config"], **SCHEDULES[schedule](params["train_config"]), "seed": seed}
    cmd = ["mtl-meta", "train", "--method", params["method"], "--dataset", params["dataset"],
           "--backbone", params["backbone"], "--out", str(out), "--no-progress"]
    cmd += ["--rotations"] * bool(params.get("train_rotations")) + ["--augment"] * bool(params.get("augment"))
    for key, value in config.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    options = {**params.get("algorithm_options", {}), **trial}   # e.g. MAML's inner_lr
    if options:
        cmd += ["--option"] + [f"{k}={json.dumps(v)}" for k, v in options.items()]
    return cmd


def run(cmd: list[str]) -> str:
    "Run an `mtl-meta` command with this interpreter; return its standard output."
    launcher = "import sys; from mtl_meta.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", launcher, *cmd[1:]], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""   # the command's last line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=["mtl", "metaoptnet-rr"])
    ap.add_argument("--setting", default="5w1s", help="the committed runs' setting, as in their names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figures", type=Path, default=Path("figures/cpu-2026-11"),
                    help="a reproduction folder holding the final runs (default: the frozen runs of cpu-2026-11)")
    ap.add_argument("--out", type=Path, default=Path("runs/patience-probe"))
    ap.add_argument("--episodes", type=int, default=1000, help="test episodes (15 queries per class)")
    args = ap.parse_args()
    rows, schedules = [], {}
    for method in args.methods:
        run_json = args.figures / "runs" / f"omniglot-minimal-{args.setting}-{method}" / "run.json"
        if not run_json.exists():
            sys.exit(f"no committed run at {run_json}: pass --figures with a folder of complete final runs (figures/cpu-2026-11, or figures once the cpu rerun is complete)")
        params = json.loads(run_json.read_text())["config"]["parameters"]
        cfg = params["train_config"]
        for name, override in SCHEDULES.items():
            c = {**cfg, **override(cfg)}
            schedules.setdefault(name, f"{name}: learning rate cut by 10 at flat epoch {c['lr_patience'] + 1}, "
                                       f"stop at flat epoch {c['early_stop_patience']}, at most {c['epochs']} epochs")
        for name in SCHEDULES:
            out = args.out / f"{method}-{name}-seed{args.seed}"
            cmd = train_command(params, name, args.seed, out)
            print("$", " ".join(cmd), flush=True)
            run(cmd)
            summary = json.loads((out / "summary.json").read_text())
            test = json.loads(run(["mtl-meta", "evaluate", "--checkpoint", str(out / "checkpoint.pt"),
                                   "--ways", str(cfg["ways"]), "--shots", str(cfg["shots"]), "--queries", "15",
                                   "--episodes", str(args.episodes), "--adapt", params["adapt"],
                                   "--seed", str(TEST_SEED_OFFSET + args.seed),
                                   "--json", "--no-progress"]))
            rows.append(f"| {method} | {name} | {summary['epochs']} | {summary['best_epoch']} | "
                        f"{100 * summary['best_val_acc']:.2f} | {summary['train_images'] / 1e6:.3f} | "
                        f"{100 * test['mean']:.2f} ± {100 * test['ci95']:.2f} |")
    version = code_version([args.out])
    text = "\n".join([
        f"# Patience probe: omniglot-minimal {args.setting}, seed {args.seed}", "",
        "; ".join(schedules.values()) + " (a flat epoch: one without a validation gain, counted from the "
        f"last gain). Test: {args.episodes} episodes of 15 queries per class, the same episodes for every row: "
        f"the final runs' own test episodes of seed {args.seed} (drawn with seed {TEST_SEED_OFFSET + args.seed}). "
        f"Code: commit {version.get('commit', '?')[:7]}{' (uncommitted changes)' if version.get('dirty') else ''}. "
        f"Command: `{' '.join(['python benchmarks/patience_probe.py', *sys.argv[1:]])}`.", "",
        "| method | schedule | epochs | best epoch | best val % | train images (M) | test % |",
        "| --- | --- | --- | --- | --- | --- | --- |", *rows, ""])
    atomic_write_text(args.out / "patience-probe.md", text)
    print(text)


if __name__ == "__main__":
    main()
