"""The budget study (issue 20): does a tier run's verdict move when it trains twice as long?

R-NEM K=5 and K=8, seed 0, original initialisation, on mini-balls4: the tier's run (3,125 updates,
5 epochs of batch 16) and the same run continued to 6,250 updates (10 epochs), each scored with
every metric the evaluator has on mini-balls4 (at the run's K) and mini-balls678 (K=8), beside the
floors pinned in ``leaderboard.board`` (best fixed grid on each grouping score, best trivial
predictor on BCE, frozen last frame on simulation IoU). It also prints each run's validation loss
and ARI per epoch from its log.jsonl, to see whether grouping slides as the loss falls.

How the 6,250-update runs are made (resumably, from the tier run's own last.pt, so the first
3,125 updates are the tier run's):

    cp -r RUNS/mini-balls4-rnem-k5 BUDGET/mini-balls4-rnem-k5      # RUNS: the tier's --out
    sed 's/^epochs = 5$/epochs = 10/' baselines/mini-balls4-rnem-k5.toml \\
        > BASELINES10/mini-balls4-rnem-k5.toml                      # the same run, 10 epochs
    rnem-bench reproduce --tier mini --models mini-balls4-rnem-k5 --seed 0 --out BUDGET \\
        --baselines BASELINES10 --no-evaluate                       # resumes at epoch 5

then (each run dir's best checkpoint, i.e. the best validation loss within its budget, as the tier
scores it; with ``--last`` also its last checkpoint, the weights at the run's end (3,125 updates; up to
6,250 where the recipe's early stopping, patience 5, does not end it sooner), where that is a later epoch
than the best):

    OMP_NUM_THREADS=1 python benchmarks/budget_study.py RUNS/mini-balls4-rnem-k5/seed0 \\
        BUDGET/mini-balls4-rnem-k5/seed0 [...K=8...] --last --out benchmarks/results/budget_study_mini.md

Results already scored (``result-<task>.json`` in a run dir, ``result-<task>-last.json`` for the last
checkpoint, newer than the checkpoint) are read back, and a checkpoint byte-identical to one scored
earlier in the same call (a continued run whose best is still the tier run's) is not scored twice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnem_bench.evaluation.run import default_k, evaluate_run
from rnem_bench.evaluation.results import cpu_model
from rnem_bench.io import read_jsonl
from rnem_bench.leaderboard.board import FLOOR_LABELS, RANK_METRIC, best_grid, reference_rows, simulation_floors
from rnem_bench.training.checkpoint import BEST, CONFIG, LAST, LOG, SUMMARY

TASKS = ("mini-balls4", "mini-balls678")  # scored at default_k: the run's own K, then 8 (the extrapolation test)
COLUMNS = [  # (label, function of the metrics, format)
    ("ARI mean", lambda m: m["ari_mean"], "{:.3f}"),
    ("ARI last", lambda m: m["ari_last"], "{:.3f}"),
    ("video ARI", lambda m: m.get("ari_video"), "{:.3f}"),
    ("late ARI", lambda m: m.get("ari_late"), "{:.3f}"),
    ("BCE / copy", lambda m: m["relative_bce_last"], "{:.3f}"),
    ("IoU last", lambda m: m.get("iou_last"), "{:.3f}"),
    ("sim. BCE (mean of 10)", lambda m: float(np.mean(m["simulation_bce"])) if m.get("simulation_bce") else None, "{:.0f}"),
    ("sim. IoU (mean of 10)", lambda m: float(np.mean(m["simulation_iou"])) if m.get("simulation_iou") else None, "{:.3f}"),
]


def scored(rundir: Path, task: str, k: int, which: str = "best",
           known: dict[tuple[str, str, int], dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's ``which`` checkpoint (best or last) on ``task``'s canonical test split: taken from
    ``known`` where the same checkpoint bytes were scored before in this call, read back where it was
    scored after the checkpoint was written (by this script, or for the best one by ``reproduce``
    into OUT/results/TASK/), else evaluated here."""
    checkpoint = rundir / (BEST if which == "best" else LAST)
    key = (hashlib.sha256(checkpoint.read_bytes()).hexdigest(), task, k) if known is not None else None
    if key in (known or {}):
        return known[key]
    path = rundir / (f"result-{task}.json" if which == "best" else f"result-{task}-{which}.json")
    by_reproduce = rundir.parent.parent / "results" / task / f"{rundir.parent.name}-{rundir.name}.json"
    result = None
    for found in (path, by_reproduce) if which == "best" else (path,):
        if found.exists() and found.stat().st_mtime > checkpoint.stat().st_mtime:
            candidate = json.loads(found.read_text())
            if candidate["model"]["k"] == k:
                result = candidate
                break
    if result is None:
        result = evaluate_run(rundir, task=task, k=k, which=which)
        path.write_text(json.dumps(result, indent=2) + "\n")
    if key is not None:
        known[key] = result
    return result


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def floor_row(task: str) -> list[str]:
    """The best pinned trivial predictor of each column (``leaderboard.board``'s own selections)."""
    floors = dict(reference_rows(task))
    sim_bce, frozen_iou = simulation_floors(task)
    relative = min(((label, m[RANK_METRIC]) for label, m in floors.items() if RANK_METRIC in m), key=lambda kv: kv[1])
    copy = floors[FLOOR_LABELS["copy"]]
    cells = []
    for label, _, spec in COLUMNS:
        metric = {"ARI mean": "ari_mean", "video ARI": "ari_video", "late ARI": "ari_late"}.get(label)
        best = {"BCE / copy": relative, "IoU last": (FLOOR_LABELS["copy"], copy["iou_last"]),
                "sim. BCE (mean of 10)": sim_bce, "sim. IoU (mean of 10)": frozen_iou}.get(label)
        if metric:
            best = best_grid(task, metric)
        cells.append("-" if best is None else f"{spec.format(best[1])} ({best[0]})")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rundirs", nargs="+", type=Path)
    parser.add_argument("--last", action="store_true", help="also score each run's last checkpoint where it is not its best")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/budget_study_mini.md"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    lines: list[str] = []
    rows: dict[str, list[str]] = {task: [] for task in TASKS}
    known: dict[tuple[str, str, int], dict[str, Any]] = {}  # (checkpoint sha256, task, K) -> result
    for rundir in args.rundirs:
        config = json.loads((rundir / CONFIG).read_text())
        summary = json.loads((rundir / SUMMARY).read_text())
        run = f"R-NEM K={config['k']}, {summary['updates']:,} updates"
        log = read_jsonl(rundir / LOG)
        lines.append(f"- {run}: valid loss / valid ARI mean / last per epoch: " + "; ".join(
            f"{r['epoch']}: {r['valid_loss']:.1f} / {r.get('valid_ari_mean', float('nan')):.3f} / "
            f"{r.get('valid_ari_last', float('nan')):.3f}" for r in log))
        checkpoints = {"best": f"{run} (best: epoch {summary['best_epoch']})"}
        if args.last and summary["best_epoch"] != summary["epochs"]:
            checkpoints["last"] = f"{run} (last: epoch {summary['epochs']})"
        for which, name in checkpoints.items():
            for task in TASKS:
                m = scored(rundir, task, default_k(config["task"], config["k"], task), which, known)["metrics"]
                rows[task].append(f"| {name} | " + " | ".join(fmt(f(m), spec) for _, f, spec in COLUMNS) + " |")
    cpu = cpu_model() or platform.processor()
    out = ["# Budget study: the CPU tier's R-NEM runs at 3,125 and 6,250 updates", "",
           f"Produced by `python benchmarks/budget_study.py {' '.join(map(str, args.rundirs))}{' --last' if args.last else ''}` on {cpu} "
           f"({time.perf_counter() - t0:.0f} s). Each run's best checkpoint (lowest validation loss within its budget, "
           "as the tier scores it) and, where named, its last (the weights at the run's end), "
           "on the canonical test split; the floor row is the best trivial predictor of each column as pinned on the board.", ""]
    for task in TASKS:
        out += [f"## {task}", "", "| run | " + " | ".join(label for label, _, _ in COLUMNS) + " |",
                "|" + " --- |" * (len(COLUMNS) + 1), *rows[task],
                "| best floor | " + " | ".join(floor_row(task)) + " |", ""]
    out += ["## Validation per epoch", "", *lines, ""]
    args.out.write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
