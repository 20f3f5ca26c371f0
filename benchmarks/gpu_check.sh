#!/usr/bin/env bash
# One prepared GPU check for a lent CUDA machine, ~9.5 minutes in all (TOTAL=570 s; give the call 600):
#   0. in the background from the start: the canonical balls4 (50,000/10,000/10,000 sequences of 64x64) and
#      balls678 (10,000) datasets, with GEN_WORKERS processes (cores are left to the benchmark's launching);
#   1. the GPU tests (pytest -m gpu): updates captured as a CUDA graph equal eager ones (fp32, bf16), the harness
#      with --cuda-graph, bf16, the compiled EM step, the evaluator and the DQN on CUDA;
#   2. benchmarks/bench_training.py, paper config (64x64, batch 64, 30 steps), every model: eager fp32 (the
#      reference) vs the update captured as one CUDA graph (fp32, bf16), then PROCS processes at once vs one
#      (eager and captured): seconds per update and the updates per second of all processes together;
#   3. torch.compile mode="reduce-overhead" for R-NEM, cut at T_COMPILE seconds (it may compile for minutes);
#   4. with the time left: R-NEM K=5 on the canonical balls4 at the paper config (batch 64, Adam 1e-3, noise 0.2)
#      on the faster fp32 path of step 2 (TRAIN_PATH=auto|graph|eager), with --max-minutes so that it stops
#      between epochs, resumably (an epoch that cannot end in time is stopped by SIGTERM, also resumably);
#   5. its best checkpoint on the canonical balls4 test split at K=5 and balls678 at K=8 (result files), with
#      forward passes and rollouts replayed as CUDA graphs (--cuda-graph), beside EAGER_LIMIT sequences eagerly;
#   6. the run packed into $OUT: one tar.xz of last.pt, best.pt (unless it holds last.pt's weights), config.json,
#      log.jsonl, summary.json and the result files, cut into 15 MiB parts (the device tool returns files of at
#      most 16 MiB). R-NEM's last.pt is ~57 MiB (weights and Adam's two moments in fp32); stored as 4 byte planes
#      (the floats' exponent bytes together) it compressed to 47 MB on a dry run (52 MB plain); with best.pt 65 MB.
# Each step has its own time limit, so a slow one cannot starve the rest; everything is logged to $OUT/log.txt
# (OUT defaults to ./gpu-out) as it comes, so a call cut short still returns what ran.
#
#   bash benchmarks/gpu_check.sh                  # where rnem-bench and its dependencies are installed
#   WHEELS=.whl bash benchmarks/gpu_check.sh      # a bare machine: install these wheels into /tmp/site first
#   RESUME=gpu-resume bash benchmarks/gpu_check.sh   # continue the run whose parts an earlier call returned
#                                                    # (copied into the working tree, here gpu-resume/)
#   DEVICE=cpu BENCH_CONFIG=tiny PROCS=2 N_SEQ4=64/16/16 N_SEQ678=0/0/16 TRAIN_ARGS="--steps 3 --batch-size 8" \
#     TOTAL=900 bash benchmarks/gpu_check.sh     # a dry run of every step on a CPU (the GPU tests skip)
#
# On a bare machine the package itself travels as a wheel too (`pip wheel --no-deps -w .whl .`), so that
# rnem_bench.generators (mapped from generators/ by pyproject.toml) resolves; every step runs from a
# scratch folder so the source tree does not shadow the installed package.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$REPO/gpu-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
TOTAL="${TOTAL:-570}"          # seconds for the whole script
T_EVAL="${T_EVAL:-60}"         # each of the two evaluations
export PYTHONUNBUFFERED=1
if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$REPO/$WHEELS"/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
WORK="$(mktemp -d)"
cd "$WORK"
RNEM=("$PY" -c "from rnem_bench.cli import main; main()")
export RNEM_BENCH_DATA="${DATA_DIR:-$WORK/data}"   # DATA_DIR: keep the datasets between dry runs
DATA4="$RNEM_BENCH_DATA/balls4.zarr"
DATA678="$RNEM_BENCH_DATA/balls678.zarr"
RUN="$WORK/rnem-balls4"        # the training run; packed into $OUT at the end
PACK="$OUT/rnem-balls4.tar.xz.part-"

LOG="$OUT/log.txt"   # one combined log: the device tool returns few files
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || lscpu | grep "Model name"; } 2>&1 | tee "$LOG"
"$PY" -c "import torch, numpy, numba, zarr; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'numpy', numpy.__version__, 'numba', numba.__version__, 'zarr', zarr.__version__)" 2>&1 | tee -a "$LOG"

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, append its output to the log, print its tail
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name: $*" >>"$LOG"
  # -k: the harness turns SIGTERM into "stop after this update", so a hung step needs a SIGKILL too.
  timeout -k 20 "$limit" "$@" 2>&1 | tee -a "$LOG" >"$WORK/$name.log"
  local rc=${PIPESTATUS[0]}
  tail -n "${TAIL:-12}" "$WORK/$name.log"
  echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s, $((TOTAL - SECONDS)) s left)" | tee -a "$LOG" "$WORK/summary.txt"
}

# 0. The data, in the background (generation is deterministic: a later call makes the same datasets).
(
  "${RNEM[@]}" generate --task balls4 ${N_SEQ4:+--n-seq "$N_SEQ4"} --workers "${GEN_WORKERS:-8}" --out "$DATA4" --quiet \
    && "${RNEM[@]}" generate --task balls678 ${N_SEQ678:+--n-seq "$N_SEQ678"} --workers "${GEN_WORKERS:-8}" --out "$DATA678" --quiet
) >"$WORK/generate.log" 2>&1 &
GEN=$!
T_DATA0=$SECONDS

# 1. The files that hold GPU tests, named, so that collection needs none of the test-only packages (pymunk).
step gpu_tests "${T_TESTS:-100}" "$PY" -m pytest "$REPO/tests/test_training_gpu.py" "$REPO/tests/test_evaluator.py" \
  "$REPO/tests/test_dqn.py" -c "$REPO/pyproject.toml" --rootdir "$REPO" -m gpu -q -p no:cacheprovider --timeout 90

# 2. Eager vs captured, in one process and in PROCS processes at once.
TAIL=0 step bench "${T_BENCH:-150}" "$PY" "$REPO/benchmarks/bench_training.py" --device "$DEVICE" \
  --config "${BENCH_CONFIG:-paper}" --rounds 10 --models "${MODELS:-rnem,lstm,rnn,rnem-noatt,rnn-em}" \
  --paths reference,captured,captured-bf16 --procs "${PROCS:-4}" --procs-paths reference,captured --updates 3

# 3. torch.compile's own CUDA graphs (reduce-overhead), R-NEM only, capped.
if [ "${T_COMPILE:-40}" -gt 0 ]; then
  TAIL=0 step compile "${T_COMPILE:-40}" "$PY" "$REPO/benchmarks/bench_training.py" --device "$DEVICE" \
    --config "${BENCH_CONFIG:-paper}" --rounds 10 --models rnem --paths reference,reduce-overhead
fi

# 4. Train R-NEM on balls4 with the time left, on the faster fp32 path of step 2.
while kill -0 "$GEN" 2>/dev/null && [ $((TOTAL - SECONDS)) -gt $((2 * T_EVAL + 90)) ]; do sleep 2; done
if kill -0 "$GEN" 2>/dev/null; then
  echo "== generate: not done in time; no training" | tee -a "$LOG" "$WORK/summary.txt"
else
  wait "$GEN"
  echo "== generate: exit $? after $((SECONDS - T_DATA0)) s (in the background)" | tee -a "$LOG" "$WORK/summary.txt"
fi
cat "$WORK/generate.log" >>"$LOG"

fp32_seconds() {  # fp32_seconds PATH: R-NEM's seconds per update on that path in the bench table, or nothing
  awk -v path="$1" '$1 == "rnem" && $2 == path && $3 == "fp32" && $4 ~ /^[0-9.]+$/ {print $4; exit}' "$WORK/bench.log"
}
graph_flag=--no-cuda-graph
case "${TRAIN_PATH:-auto}" in
  graph) graph_flag=--cuda-graph ;;
  auto)
    eager=$(fp32_seconds reference); captured=$(fp32_seconds captured)
    if [ -n "$captured" ] && { [ -z "$eager" ] || awk -v c="$captured" -v e="$eager" 'BEGIN {exit !(c < e)}'; }; then
      graph_flag=--cuda-graph
    fi
    echo "== path: R-NEM s/update eager ${eager:-?}, captured ${captured:-?} -> $graph_flag" | tee -a "$LOG" ;;
esac

resume_flag=()
if [ -n "${RESUME:-}" ]; then  # the parts an earlier call returned, copied into the working tree
  case "$RESUME" in /*) parts="$RESUME" ;; *) parts="$REPO/$RESUME" ;; esac
  mkdir -p "$RUN"
  if cat "$parts"/rnem-balls4.tar.xz.part-* | xz -d | tar -C "$RUN" -xf -; then
    "$PY" - "$RUN" <<'EOF' 2>&1 | tee -a "$LOG"
import sys
from pathlib import Path

import numpy as np
import torch

run = Path(sys.argv[1])
planes, size = run / "last.pt.planes", int((run / "last.pt.size").read_text())  # see the packing below
(run / "last.pt").write_bytes(np.frombuffer(planes.read_bytes(), np.uint8).reshape(4, -1).T.tobytes()[:size])
planes.unlink()
(run / "last.pt.size").unlink()
# best.pt is packed only when it differs from last.pt's weights: otherwise remake it from them.
last = torch.load(run / "last.pt", weights_only=True, map_location="cpu")
if not (run / "best.pt").exists() and last["epoch"] >= 1 and last["best_epoch"] == last["epoch"] and last.get("mid_epoch") is None:
    torch.save({"model": last["model"], "epoch": last["epoch"], "valid_loss": last["best_valid"]}, run / "best.pt")
print(f"resume: {run} at epoch {last['epoch']} ({last.get('updates')} updates); best.pt: {(run / 'best.pt').exists()}")
EOF
    resume_flag=(--resume)
  else
    echo "== resume: cannot unpack $RESUME; training starts afresh" | tee -a "$LOG"
  fi
fi

left=$((TOTAL - SECONDS - 2 * T_EVAL - ${T_EVAL_EAGER:-25} - 30))  # the training's limit: what is left after the evaluations and packing
if [ -d "$DATA4" ] && [ "$left" -ge 60 ]; then
  # --max-minutes counts from the first update: leave ~40 s for the start and the last checkpoint
  minutes=$(awk -v s="$left" 'BEGIN {printf "%.2f", (s - 40) / 60}')
  step train "$left" "${RNEM[@]}" run rnem --dataset "$DATA4" --k 5 --batch-size 64 --lr 1e-3 --noise 0.2 \
    --device "$DEVICE" "$graph_flag" --max-minutes "$minutes" --out "$RUN" "${resume_flag[@]}" --quiet ${TRAIN_ARGS:-}
else
  echo "== train: skipped ($left s left, data ready: $([ -d "$DATA4" ] && echo yes || echo no))" | tee -a "$LOG" "$WORK/summary.txt"
fi

# 5. Its best checkpoint on the test splits (needs one finished epoch: best.pt).
if [ -f "$RUN/best.pt" ]; then
  # the reference for the captured evaluation's speed: the first EAGER_LIMIT test sequences, eagerly
  step eval_eager "${T_EVAL_EAGER:-25}" "${RNEM[@]}" evaluate "$RUN" --task balls4 --dataset "$DATA4" --k 5 \
    --device "$DEVICE" --no-cuda-graph --limit "${EAGER_LIMIT:-640}" --out "$WORK/result-eager.json"
  step eval_balls4 "$T_EVAL" "${RNEM[@]}" evaluate "$RUN" --task balls4 --dataset "$DATA4" --k 5 \
    --device "$DEVICE" --cuda-graph --out "$RUN/result-balls4.json"
  if [ -d "$DATA678" ]; then
    step eval_balls678 "$T_EVAL" "${RNEM[@]}" evaluate "$RUN" --task balls678 --dataset "$DATA678" --k 8 \
      --device "$DEVICE" --cuda-graph --out "$RUN/result-balls678.json"
  fi
  "$PY" - "$WORK/result-eager.json" "$RUN/result-balls4.json" "$RUN/result-balls678.json" <<'EOF' 2>&1 | tee -a "$LOG" "$WORK/summary.txt"
import json, sys
for path in sys.argv[1:]:  # sequences per second of each evaluation (model, rollout and metrics)
    try:
        r = json.load(open(path))
    except OSError:
        continue
    n = r["dataset"]["n_sequences"]
    print(f"== eval rate {path.rsplit('/', 1)[-1]}: {n} sequences in {r['wall_time_s']:.1f} s = {n / r['wall_time_s']:.0f}/s")
EOF
else
  echo "== evaluate: skipped (no best.pt: no epoch finished)" | tee -a "$LOG" "$WORK/summary.txt"
fi

# 6. Pack the run for a later call (RESUME=...): last.pt, best.pt when it differs, the small files.
if [ -f "$RUN/last.pt" ]; then
  files=$(cd "$RUN" && "$PY" - <<'EOF'
from pathlib import Path

import numpy as np
import torch

# last.pt's bytes as 4 byte planes: torch.save aligns its tensors to 64 bytes, so each plane holds one
# byte of every float32 and the exponents compress well (~10% smaller); undone on resume.
data = Path("last.pt").read_bytes()
Path("last.pt.size").write_text(str(len(data)))
Path("last.pt.planes").write_bytes(np.frombuffer(data + bytes(-len(data) % 4), np.uint8).reshape(-1, 4).T.tobytes())
last = torch.load("last.pt", weights_only=True, map_location="cpu")
best_is_last = last["best_epoch"] == last["epoch"] and last.get("mid_epoch") is None  # remade on resume
names = ["last.pt.planes", "last.pt.size"] + ([] if best_is_last or not Path("best.pt").exists() else ["best.pt"])
print(" ".join(names + [p.name for p in sorted(Path(".").glob("*.json*"))]))
EOF
)
  # shellcheck disable=SC2086
  (cd "$RUN" && tar -cf - $files | xz -T0 -6 | split -b 15M - "$PACK") \
    && echo "== pack: $files -> $(ls "$PACK"* | wc -l) part(s), $(cat "$PACK"* | wc -c) bytes" | tee -a "$LOG" "$WORK/summary.txt" \
    || echo "== pack: failed" | tee -a "$LOG" "$WORK/summary.txt"
fi

cat "$WORK/bench.log"   # the tables last (the steps printed no tail of them)
[ -f "$WORK/compile.log" ] && cat "$WORK/compile.log"
cat "$WORK/summary.txt"
