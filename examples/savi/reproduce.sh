#!/usr/bin/env bash
# One seed of SAVi's board entries, end to end through the public path: generate the task's
# canonical dataset, train (resuming a stopped run), write test predictions, score, submit, and
# keep the run's config.json and log.jsonl beside the entry (leaderboards/<task>/runs/<entry>/,
# as the reference models' entries have them). A mini-balls4 run is also scored on mini-balls678
# with the same weights at K = 8.
#
#   bash examples/savi/reproduce.sh mini-balls4 0      # seeds 0, 1, 2 make the board's rows
#   bash examples/savi/reproduce.sh mini-curtain 0
#
# ~50 min of one CPU thread per seed at the defaults (3,125 updates of 16 sequences, the CPU tier's
# budget); RUNS (default runs/) is where run directories go.
set -euo pipefail
task=${1:?usage: reproduce.sh TASK SEED}
seed=${2:?usage: reproduce.sh TASK SEED}
here=$(dirname "$0")
run=${RUNS:-runs}/savi-$task-k5-seed$seed
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

rnem-bench generate --task "$task"
resume=()
[[ -f $run/ckpt_last.pt ]] && resume=(--resume)
python "$here/train.py" --task "$task" --seed "$seed" --out "$run" \
    --updates 3125 --batch-size 16 --slots 5 "${resume[@]}"

score_and_submit() {  # TASK [K]
    local eval_task=$1 k=${2:-}
    python "$here/predict.py" "$run" --task "$eval_task" ${k:+--slots "$k"}
    rnem-bench score "$run/predictions-$eval_task.zarr" --task "$eval_task"
    local entry
    entry=$(rnem-bench submit "$run/predictions-$eval_task.zarr.result.json" | sed -n 's/^accepted: //p')
    local files=leaderboards/$eval_task/runs/$(basename "$entry" .json)
    mkdir -p "$files"
    cp "$run/config.json" "$run/log.jsonl" "$files/"
    echo "entry $entry (training record in $files)"
}

score_and_submit "$task"
if [[ $task == mini-balls4 ]]; then
    rnem-bench generate --task mini-balls678
    score_and_submit mini-balls678 8
fi
