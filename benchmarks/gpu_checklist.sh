#!/usr/bin/env bash
# The GPU checklist (benchmarks/GPU_CHECKLIST.md, items 1-3, 5-6) as one bounded script for a lent GPU machine.
#
#   bash benchmarks/gpu_checklist.sh OUT_DIR [COMMIT] [BUDGET_S]
#
# Run from the repository root. OUT_DIR receives one log per step (00_env.log, 05_loop.log, 05_loop.json,
# 06_projection.md, 01_mtl_step.log, 02_algorithms.log, 03_train.log, 03_train.json, 07_update_time.log and the
# folder 07_update_time/ with update-time.md, .csv and .json). Steps 5 and 6 run
# first (the checklist: on the next GPU, run 5 and 6 first): the full training loop against the step alone, with and
# without prefetching and one forward per meta-batch, images/s per case at the paper's shapes in fp32 and
# bf16 + channels-last (benchmarks/bench_loop.py), and from the same measurements the projected wall-clock
# of the paper profile's MTL mini-ImageNet 5w5s run and of MetaOptNet-SVM at its recipe. COMMIT (default: $GIT_COMMIT, else `git rev-parse HEAD`)
# is printed with the results, for machines where git does not work. BUDGET_S (default 400) bounds the
# whole script: every step runs under `timeout`, capped by what is left of the budget, so one step that
# fails or hangs does not lose the others.
#
# Needs python3 with torch and CUDA; fastcore (which mtl_meta.train imports) is installed from .whl/*.whl
# into /tmp/site when python3 lacks it (machines without network: download the wheel beforehand, see
# figures/gpu/README.md). Step 3 writes a synthetic mini-ImageNet (64/16/20 classes x 600 images, 84x84, the
# MetaOptNet pickle layout of tests/fixtures.py) under $SMOKE_ROOT (default /tmp/gpu-smoke): 1.9 GB of pickles + about 1.0 GB of decoded cache (train and val).
#
# Every timing goes through benchmarks/harness.py (warm-up, interleaved rounds, paired 95% intervals, adaptive
# length under a budget): steps 1, 2, 5 and 7 run the harness-based scripts, step 3b's part timings use it too.
# Step 7 (last by default) is the per-update time of every method at the cpu profile's settings
# (benchmarks/bench_update_time.py) on this device; it needs the Omniglot minimal archives under OMNIGLOT_ROOT
# (default: $MTL_META_DATA as given to this script) and otherwise says so in one line (exit status 2).
#
# Knobs (environment): STEP_REPS (bench_mtl_step rounds at most, 50), STEP_BUDGET (its seconds per setting, 20),
# ALG_REPS (bench_algorithms rounds at most, 30), ALG_BUDGET (its seconds per shots setting, 60), LOOP_BUDGET
# (bench_loop seconds per case and precision, 20), UPDATE_BUDGET_MIN (bench_update_time minutes, 1.5),
# SMOKE_STEPS (training updates per method, 300), SMOKE_EPOCH (updates per epoch, 100), SMOKE_VAL (validation
# episodes, 50), SMOKE_PER_CLASS (images per class, 600), SMOKE_REPS (timed repetitions of each part of a
# step, 50), SMOKE_DEVICE (cuda; the benchmarks' device too), SMOKE_AMP (bf16; empty: fp32), STEPS (which
# steps run, default "5 6 1 2 3 7"; the environment always prints), LOOP_UPDATES (bench_loop rounds at most, 30),
# LOOP_VAL (bench_loop validation episodes, 50), LOOP_COMPILE (1: also time torch.compile), LOOP_ARGS (more
# bench_loop arguments; the CPU dry run: "--backbone conv4 --size 28 --channels 1 --classes 10 --per-class 30").
set -u
OUT=${1:?usage: gpu_checklist.sh OUT_DIR [COMMIT] [BUDGET_S]}
COMMIT=${2:-${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}}
BUDGET=${3:-400}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1
START=$(date +%s)
SMOKE_ROOT=${SMOKE_ROOT:-/tmp/gpu-smoke}
DEV=${SMOKE_DEVICE:-cuda}
STEPS=" ${STEPS:-5 6 1 2 3 7} "
OMNI_ROOT=${OMNIGLOT_ROOT:-${MTL_META_DATA:-}}   # before step 3 points MTL_META_DATA at its synthetic data
want() { [[ $STEPS == *" $1 "* ]]; }

if ! python3 -c "import fastcore" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "warning: python3 has no fastcore and there is no .whl/ to install it from; steps 2-3 will fail" >&2
  fi
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# run_step LOG CAP_S CMD...: CMD under timeout min(CAP_S, budget left - 5 s), output appended to LOG and shown
run_step() {
  local log=$1 cap=$2; shift 2
  local t=$(( $(left) - 5 )); (( t > cap )) && t=$cap
  if (( t < 10 )); then echo "SKIPPED (budget spent): $*" | tee -a "$log"; return 0; fi
  echo "### $(date -u +%H:%M:%S) [timeout ${t}s] $*" | tee -a "$log"
  local t0=$(date +%s)
  timeout -k 5 "$t" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "### rc=$rc$( ((rc == 124 || rc == 137)) && echo ' (TIMED OUT)') after $(( $(date +%s) - t0 ))s" | tee -a "$log"
  return 0
}

# ---- 0. environment --------------------------------------------------------------------------------
{
  echo "commit $COMMIT"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ); host $(hostname); $(getconf _NPROCESSORS_ONLN) CPUs; budget ${BUDGET}s"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || echo "no nvidia-smi"
} | tee "$OUT/00_env.log"
run_step "$OUT/00_env.log" 60 python3 - <<'EOF'
import os, torch, numpy
print(f"python3 torch {torch.__version__} (cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}), numpy {numpy.__version__}")
print(f"torch threads {torch.get_num_threads()}; cudnn.benchmark {torch.backends.cudnn.benchmark}; "
      f"tf32 matmul {torch.backends.cuda.matmul.allow_tf32}, tf32 conv {torch.backends.cudnn.allow_tf32}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device {torch.cuda.get_device_name(0)}: {p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB, "
          f"capability {p.major}.{p.minor}, bf16 supported {torch.cuda.is_bf16_supported()}")
else:
    print("CUDA NOT AVAILABLE")
import fastcore, mtl_meta.train, mtl_meta.gbml, mtl_meta.api
print(f"fastcore {fastcore.__version__}; mtl_meta imports ok")
EOF

# ---- 3a. the synthetic data set, written in the background (CPU only) while the GPU benchmarks run -----
GEN_LOG="$OUT/03_train.log"
# the data writer gets the last 4 CPUs, the GPU benchmarks the others
if want 3 && [[ $DEV == cuda* ]] && command -v taskset >/dev/null && (( $(getconf _NPROCESSORS_ONLN) >= 8 )); then
  PIN="taskset -c $(( $(getconf _NPROCESSORS_ONLN) - 4 ))-$(( $(getconf _NPROCESSORS_ONLN) - 1 ))"; BENCH_PIN="taskset -c 0-$(( $(getconf _NPROCESSORS_ONLN) - 5 ))"
else
  PIN=""; BENCH_PIN=""
fi
if want 3; then
export MTL_META_DATA=$SMOKE_ROOT/data MTL_META_CACHE=$SMOKE_ROOT/cache
(
  echo "### $(date -u +%H:%M:%S) writing the synthetic mini-ImageNet into $MTL_META_DATA (${PIN:-no pinning})"
  timeout -k 5 240 $PIN python3 - <<'EOF'
import os, sys, time, pathlib, shutil
import numpy as np
sys.path.insert(0, "tests")
from fixtures import write_mini_imagenet
from mtl_meta.data import load_split
root = pathlib.Path(os.environ["MTL_META_DATA"])
shutil.rmtree(root, ignore_errors=True); shutil.rmtree(os.environ["MTL_META_CACHE"], ignore_errors=True)
root.mkdir(parents=True)
per = int(os.environ.get("SMOKE_PER_CLASS", 600))
t = time.perf_counter()
write_mini_imagenet(root, np.random.default_rng(0), classes=(64, 16, 20), per_class=per)
size = sum(f.stat().st_size for f in (root / "mini-imagenet").iterdir())
print(f"wrote 64/16/20 classes x {per} images (84x84x3 uint8 pickles, {size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s")
for split in ("train", "val"):   # decode into the cache now, so the training runs below time training alone
    t = time.perf_counter()
    d = load_split("mini-imagenet", split)
    print(f"decoded {split}: {d.images.shape} {d.images.dtype}, {d.n_classes} classes, in {time.perf_counter() - t:.1f}s")
EOF
  echo "### data rc=$?"
) > "$SMOKE_ROOT.gen.log" 2>&1 &
GEN_PID=$!
fi

# ---- 5. the full loop against the step alone (and 6. the projected wall-clock, from the same run) -----------
if want 5 || want 6; then
  # shellcheck disable=SC2086
  run_step "$OUT/05_loop.log" 240 $BENCH_PIN python3 benchmarks/bench_loop.py --device "$DEV" \
    --updates "${LOOP_UPDATES:-30}" --warmup 10 --budget-s "${LOOP_BUDGET:-20}" --val-episodes "${LOOP_VAL:-50}" \
    --json "$OUT/05_loop.json" \
    $( [[ ${LOOP_COMPILE:-0} == 1 ]] && echo --compile ) ${LOOP_ARGS:-}
fi
if want 6; then
  run_step "$OUT/05_loop.log" 30 python3 - "$OUT/05_loop.log" "$OUT/06_projection.md" <<'EOF'
"""Item 6: the projection table that bench_loop printed, on its own, beside the paper's V100 GPU-hours."""
import sys
lines = open(sys.argv[1]).read().splitlines()
start = next((i for i, l in enumerate(lines) if l.startswith("| run | precision | updates")), None)
if start is None:
    sys.exit("no projection table in " + sys.argv[1] + " (did step 5 run to the end?)")
table = [l for l in lines[start:] if l.startswith("|")]
text = "# Projected wall-clock on this device (bench_loop.py)\n\n" + "\n".join(table) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
fi

# ---- 1. MTL step vs supervised step --------------------------------------------------------------------
want 1 && for flags in "" "--amp bf16" "--amp bf16 --channels-last"; do
  run_step "$OUT/01_mtl_step.log" 90 $BENCH_PIN python3 benchmarks/bench_mtl_step.py --device "$DEV" \
    --backbones conv4 resnet12 --reps "${STEP_REPS:-50}" --budget-s "${STEP_BUDGET:-20}" $flags
done

# ---- 2. per-episode cost by method ---------------------------------------------------------------------
if want 2; then
run_step "$OUT/02_algorithms.log" 150 $BENCH_PIN python3 benchmarks/bench_algorithms.py --device "$DEV" \
  --backbone resnet12 --size 84 --channels 3 --ways 5 --shots 1 5 --queries 15 --reps "${ALG_REPS:-30}" \
  --budget-s "${ALG_BUDGET:-60}"
run_step "$OUT/02_algorithms.log" 120 $BENCH_PIN python3 benchmarks/bench_algorithms.py --device "$DEV" \
  --backbone resnet12 --size 84 --channels 3 --ways 5 --shots 15 --queries 6 --reps "${ALG_REPS:-30}" \
  --budget-s "${ALG_BUDGET:-60}"
fi

# ---- 3b. end-to-end training smoke on the synthetic mini-ImageNet ----------------------------------------
if want 3; then
wait_left=$(( $(left) - 30 )); (( wait_left > 120 )) && wait_left=120
for _ in $(seq 1 $(( wait_left > 0 ? wait_left : 1 ))); do kill -0 $GEN_PID 2>/dev/null || break; sleep 1; done
kill -0 $GEN_PID 2>/dev/null && { echo "data generation still running: stopped" >> "$SMOKE_ROOT.gen.log"; kill $GEN_PID; }
cat "$SMOKE_ROOT.gen.log" | tee -a "$GEN_LOG"
export SMOKE_JSON=$OUT/03_train.json
run_step "$GEN_LOG" 200 python3 - <<'EOF'
"""api.train for MTL and MetaOptNet-SVM (ResNet-12, 5-way 5-shot + 5 queries, augmentation, bf16, channels-last),
then the same steps split into their parts: sampling alone (CPU: index, decode, augment; plus the copy to the
GPU) and the update alone (the same Trainer.train_step on one episode already on the GPU)."""
import json, os, statistics, time
import torch
from mtl_meta import api
from mtl_meta.gbml import ALGORITHMS
from mtl_meta.train import Trainer, TrainConfig

dev, amp = os.environ.get("SMOKE_DEVICE", "cuda"), os.environ.get("SMOKE_AMP", "bf16") or None
steps, per_epoch, val = (int(os.environ.get(k, d)) for k, d in (("SMOKE_STEPS", 300), ("SMOKE_EPOCH", 100), ("SMOKE_VAL", 50)))
sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
cfg = dict(ways=5, shots=5, queries=5, device=dev, amp=amp, channels_last=dev.startswith("cuda"), max_steps=steps,
           episodes_per_epoch=per_epoch, val_episodes=val, val_queries=15, val_adapt="logreg-torch", seed=0)
print(f"torch threads {torch.get_num_threads()}; config {cfg}; augment on")
results = {"config": cfg, "methods": {}}

class Fixed:
    "A training sampler that returns the same (GPU-resident) episodes every step: the update alone."
    def __init__(self, eps): self.eps = eps
    def sample_step(self, rank=0, world_size=1): return self.eps
    def state_dict(self): return {}

REPS = int(os.environ.get("SMOKE_REPS", 50))
import sys; sys.path.insert(0, "benchmarks")
import harness   # the benchmarks' timing harness: warm-up, then rounds until the 95% interval is within +-5%

def median_ms(fn, reps=REPS, warmup=5):
    def run(n):
        for _ in range(n): fn()
    r = harness.compare({"part": run}, warmup_rounds=min(warmup, reps), units=1, min_rounds=min(5, reps),
                        max_rounds=reps, budget_s=30, absolute=True, sync=sync if dev.startswith("cuda") else None)
    return 1e3 * r.median("part")

for method in ("mtl", "metaoptnet-svm"):
    opts = ALGORITHMS[method].presets("mini-imagenet", 5)
    t0 = time.perf_counter()
    try:
        s = api.train(method, "mini-imagenet", "resnet12", out_dir=f"/tmp/gpu-smoke-run-{method}", augment=True,
                      algorithm_options=opts, resume=False, **cfg)
    except Exception as e:
        import traceback; traceback.print_exc()
        results["methods"][method] = {"error": f"{type(e).__name__}: {e}"}
        continue
    wall = time.perf_counter() - t0
    h = s["history"]
    # steady state: from the end of the first epoch (warm-up, cudnn autotuning) to the end of the run
    d_steps, d_sec, d_img = (h[-1][k] - h[0][k] for k in ("step", "seconds", "images"))
    r = {"steps": s["steps"], "epochs": s["epochs"], "stopped": s["stopped"], "wall_s": round(wall, 1),
         "train_seconds": s["train_seconds"], "train_images": s["train_images"],
         "first_epoch_ms_per_step": round(1e3 * h[0]["seconds"] / h[0]["step"], 2),
         "steady_ms_per_step": round(1e3 * d_sec / d_steps, 2) if d_steps else None,
         "steady_images_per_s": round(d_img / d_sec, 1) if d_steps else None,
         "images_per_step": d_img / d_steps if d_steps else None,
         "val_acc": [round(x["val_acc"], 4) for x in h], "train_loss": [round(x["train_loss"], 4) for x in h],
         "history": h}
    # the parts of a step, on the same samplers / model / config as the run
    cfg_obj = TrainConfig.from_dict(cfg)
    samplers = api._samplers("mini-imagenet", api.DataOptions(augment=True), TrainConfig(ways=5, shots=5, queries=5, seed=1),
                             sampler_options=api._sampler_options(method, opts))
    tr = Trainer(api.build_algorithm(s["metadata"]), Fixed(None), None, cfg_obj)
    def sample_only(): return samplers["train"].sample_step()
    def sample_to_gpu(): return [tr._prepare(e) for e in samplers["train"].sample_step()]
    r["sample_cpu_ms"] = round(median_ms(sample_only), 2)
    r["sample_to_gpu_ms"] = round(median_ms(sample_to_gpu), 2)
    tr.train_sampler = Fixed(sample_to_gpu())
    r["update_only_ms"] = round(median_ms(tr.train_step), 2)
    r["data_share_of_step"] = round(1 - r["update_only_ms"] / r["steady_ms_per_step"], 3) if r["steady_ms_per_step"] else None
    r["sampler_ceiling_steps_per_s"] = round(1e3 / r["sample_to_gpu_ms"], 1)
    results["methods"][method] = r
    print(json.dumps({k: v for k, v in r.items() if k != "history"}), flush=True)
    del tr
    if dev.startswith("cuda"):
        print(f"peak GPU memory so far {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"); torch.cuda.empty_cache()

json.dump(results, open(os.environ["SMOKE_JSON"], "w"), indent=1, default=str)
print("| method | steady ms/step (with data) | images/s | sampling ms (CPU) | sampling + H2D ms | update alone ms | data share |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for m, r in results["methods"].items():
    if "error" in r: print(f"| {m} | failed: {r['error']} |"); continue
    print(f"| {m} | {r['steady_ms_per_step']} | {r['steady_images_per_s']} | {r['sample_cpu_ms']} | {r['sample_to_gpu_ms']} "
          f"| {r['update_only_ms']} | {r['data_share_of_step']} |")
EOF
fi

# ---- 7. per-update time of every method at the cpu profile's settings, on this device ----------------------
if want 7; then
  UB=${UPDATE_BUDGET_MIN:-1.5}
  # shellcheck disable=SC2086
  run_step "$OUT/07_update_time.log" $(( (${UB%.*} + 1) * 60 + 120 )) $BENCH_PIN python3 \
    benchmarks/bench_update_time.py --device "$DEV" --budget-min "$UB" \
    ${OMNI_ROOT:+--data-root "$OMNI_ROOT"} --out "$OUT/07_update_time"
fi

echo "### checklist done in $(( $(date +%s) - START ))s (budget ${BUDGET}s); logs in $OUT"
ls -la "$OUT"
