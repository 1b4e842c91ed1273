"""A training update at the `cpu` profile's final-run settings, built from the package the way `mtl_meta.api.train`
builds it (for benchmarks/bench_update_time.py and benchmarks/bench_configs.py).

The settings: Conv-4 on the real Omniglot minimal sets, rotated training classes (`train_rotations=True`), the
profile's training episodes (20-way, `shots` + 5 images per class), meta-batch 1, the method's presets for 20-way
Omniglot, and the learning rates (and other tuned values, e.g. MAML's inner step) selected in
`figures/cpu-2026-11/tuning.json`. That file holds the 5-way 1-shot selection only (the frozen profile tuned its
5-shot runs on 1-shot, as here): a 5-shot update uses it too. MAML's 5-shot run is cut from the current `cpu`
profile; its settings are the 1-shot run's with 5 shots. Seed 0, as the profile's first seed: the trainer starts
from the weights and draws the episodes that `api.train` would.
"""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET, BACKBONE, PROFILE = "omniglot-minimal", "conv4", "cpu"
TUNING = REPO / "figures" / "cpu-2026-11" / "tuning.json"
SETTINGS = {"5w1s": 1, "5w5s": 5}   # 5-way settings by name -> shots


def methods() -> list[str]:
    "The methods the profile compares (the registry's order: MTL first)."
    from mtl_meta.profiles import compared_methods
    return list(compared_methods())


def selected_trials(path: Path = TUNING) -> dict:
    try:
        return json.loads(Path(path).read_text())["selected"]
    except (OSError, ValueError, KeyError):
        return {}


def profile_parameters(method: str, shots: int) -> dict:
    "The profile's notebook parameters of the final run of `method` at 5-way `shots`-shot."
    from mtl_meta.profiles import PROFILES
    runs = {r.name: r for r in PROFILES[PROFILE]}
    run = runs.get(f"{DATASET}-5w{shots}s-{method}") or runs.get(f"{DATASET}-5w1s-{method}")
    if run is None:
        raise KeyError(f"the {PROFILE} profile has no final run of {method}")
    p = dict(run.parameters)
    p["train_config"] = {**p["train_config"], "shots": shots}
    return p


def settings(method: str, shots: int, trials: dict | None = None) -> tuple[dict, dict, dict]:
    "The training config and method options of an update, and the tuning trial they took."
    from mtl_meta.profiles import setting_key, split_trial
    trials = selected_trials() if trials is None else trials
    p = profile_parameters(method, shots)
    sel = trials.get(setting_key(DATASET, 5, shots, method)) or trials.get(setting_key(DATASET, 5, 1, method)) or {}
    trial = sel.get("trial", {})
    cfg_trial, opt_trial = split_trial(trial)
    cfg = {**p["train_config"], **cfg_trial, "seed": 0, "meta_batch_size": 1}
    opts = {**p["algorithm_options"], **opt_trial}
    return cfg, opts, trial


def build_trainer(method: str, shots: int, data_root: str | None = None, trials: dict | None = None,
                  backbone_options: dict | None = None, **overrides):
    """A `Trainer` whose `train_step()` is one update of the profile's final run (sampling included), ready to
    run; `backbone_options` change Conv-4 (e.g. `{"hidden": 128}`, a width of the regime map's capacity axis),
    `overrides` are TrainConfig fields (channels_last, prefetch, meta_batch_size, one_forward, compile, ...)."""
    from mtl_meta import api
    from mtl_meta.core import seed_everything
    from mtl_meta.train import TrainConfig, Trainer
    cfg_dict, opts, _ = settings(method, shots, trials)
    cfg = TrainConfig.from_dict({**cfg_dict, **overrides})
    seed_everything(cfg.seed)
    data = api.DataOptions(data_root=data_root or None, train_rotations=True)
    samplers = api._samplers(DATASET, data, cfg, sampler_options=api._sampler_options(method, opts), splits=("train",))
    split = samplers["train"].split
    metadata = {"method": method, "dataset": DATASET, "backbone": BACKBONE, "image_shape": list(split.image_shape),
                "n_classes": split.n_classes, "ways": cfg.training_ways, "backbone_options": dict(backbone_options or {}),
                "algorithm_options": opts}
    trainer = Trainer(api.build_algorithm(metadata), samplers["train"], None, cfg)
    trainer._start_fast_paths()
    return trainer


def updates(trainer):
    "A harness case: `n` training updates."
    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step()
    return run


def weights_digest(trainer) -> str:
    "SHA-256 of the algorithm's parameters and buffers: equal digests, bit-identical weights."
    import hashlib
    state = trainer.algorithm.state_dict()
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
