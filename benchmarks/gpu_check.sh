#!/usr/bin/env bash
# One short, prepared GPU check for a lent CUDA machine (~7 minutes on one H200; give the call 9):
#   1. the GPU-only tests (pytest -m gpu: bf16 and compiled EM step on CUDA, DQN buffer, evaluator);
#   2. the paper-tier pipeline at 64x64 end to end on a small balls4 set: generate (all cores),
#      train R-NEM K=5 with the CUDA defaults (eager fp32, resize decoder) for 2 epochs, evaluate;
#   3. benchmarks/bench_training.py --device cuda --variants (paper config: 64x64, batch 64, 30 steps):
#      the reference path, the fast path and each of its parts alone per model, cut by a time limit
#      if compilation is slow. The H200's one run showed bf16 + phase + compile slower than eager
#      fp32; which part costs is what this measures (BENCH_ARGS= for the two paths only).
# Each step has its own time limit, so a slow one cannot starve the rest; everything is logged to
# $OUT/log.txt (OUT defaults to ./gpu-out), the training run's config, log and scores to $OUT/rnem-run.
#
#   bash benchmarks/gpu_check.sh                  # where rnem-bench and its dependencies are installed
#   WHEELS=.whl bash benchmarks/gpu_check.sh      # a bare machine: install these wheels into /tmp/site first
#
# On a bare machine the package itself travels as a wheel too (`pip wheel --no-deps -w .whl .`), so that
# rnem_bench.generators (mapped from generators/ by pyproject.toml) resolves; every step runs from a
# scratch folder so the source tree does not shadow the installed package.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$REPO/gpu-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$REPO/$WHEELS"/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
WORK="$(mktemp -d)"
cd "$WORK"
RNEM=("$PY" -c "from rnem_bench.cli import main; main()")

LOG="$OUT/log.txt"   # one combined log: the device tool returns few files
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 | tee "$LOG"
"$PY" -c "import torch, numpy, numba, zarr; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'numpy', numpy.__version__, 'numba', numba.__version__, 'zarr', zarr.__version__)" 2>&1 | tee -a "$LOG"

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, append its output to the log, print its tail
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name: $*" >>"$LOG"
  # -k: the harness turns SIGTERM into "stop after this update", so a hung step needs a SIGKILL too.
  # The output goes to the log as it comes, so a call cut short still returns what ran.
  timeout -k 20 "$limit" "$@" 2>&1 | tee -a "$LOG" >"$WORK/$name.log"
  local rc=${PIPESTATUS[0]}
  tail -n "${TAIL:-12}" "$WORK/$name.log"
  echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s)" | tee -a "$LOG" "$WORK/summary.txt"
}

# The files that hold GPU tests, named, so that collection needs none of the test-only packages (pymunk).
step gpu_tests "${T_TESTS:-170}" "$PY" -m pytest "$REPO/tests/test_training_gpu.py" "$REPO/tests/test_evaluator.py" \
  "$REPO/tests/test_dqn.py" -c "$REPO/pyproject.toml" --rootdir "$REPO" -m gpu -q -p no:cacheprovider --timeout 160

DATA="$WORK/balls4-small.zarr"
step generate 60 "${RNEM[@]}" generate --task balls4 --n-seq "${N_SEQ:-6400/640/1000}" --out "$DATA" --quiet
step train "${T_TRAIN:-150}" "${RNEM[@]}" run rnem --dataset "$DATA" --epochs "${EPOCHS:-2}" --out "$OUT/rnem-run" --quiet
step evaluate 60 "${RNEM[@]}" evaluate "$OUT/rnem-run" --dataset "$DATA" --device "${EVAL_DEVICE:-cuda}" --out "$OUT/rnem-run/eval.json"
find "$OUT/rnem-run" -type f ! -name config.json ! -name log.jsonl ! -name eval.json -delete  # config, log, scores come back

TAIL=0 step bench "${T_BENCH:-170}" "$PY" "$REPO/benchmarks/bench_training.py" --device cuda --rounds 10 \
  --models "${MODELS:-rnem,lstm,rnn,rnem-noatt,rnn-em}" ${BENCH_ARGS---variants}
cat "$WORK/bench.log"   # the whole table last (the step printed no tail of it)
cat "$WORK/summary.txt"
