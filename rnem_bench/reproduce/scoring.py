"""Scoring the runs of ``reproduce``: each finished run's best checkpoint on its test sets (one
result file each, optionally submitted to a board with the run's config.json and log.jsonl), or
the same figures read back from committed result files (``--from-board``)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from rnem_bench.reproduce.jobs import Job


@dataclass(frozen=True)
class Outcome:
    """One scored (run, test set): the evaluator's metrics plus how the run was trained."""

    job: Job
    task: str                 # the test set's task
    k: int
    metrics: dict[str, Any]   # paper-facing metrics: ari, bce, relational_bce, relative_bce, ...
    result_file: Path
    full_training: bool       # finished by early stopping or the epoch cap, at the paper preset


# The paper-facing figures, read from a result file's "metrics" (written by the evaluator).
# Each is a number, or a per-step list that we average (simulation BCE over simulated steps).
METRIC_KEYS: dict[str, str] = {
    "ari": "ari_mean",
    "bce": "bce_last",
    "relational_bce": "relational_bce_last",
    "relative_bce": "relative_bce_last",
    "relative_relational_bce": "relative_relational_bce_last",
    "simulation_bce": "simulation_bce",
    # scores trivial predictors cannot win (optional: older result files lack them)
    "ari_video": "ari_video",
    "ari_late": "ari_late",
    "iou_last": "iou_last",
    "simulation_iou": "simulation_iou",
}


def paper_metrics(result: dict[str, Any]) -> dict[str, float]:
    metrics = result.get("metrics", {})
    out = {}
    for ours, key in METRIC_KEYS.items():
        value = metrics.get(key)
        if isinstance(value, list) and value:
            value = statistics.fmean(float(v) for v in value)
        if isinstance(value, (int, float)):
            out[ours] = float(value)
    return out


def evaluate_job(job: Job, summary: dict, task: str | None, preset: str, out: Path, device: str = "cpu",
                 board: Path | None = None, cuda_graph: bool = False) -> list[Outcome]:
    """Score a job's best checkpoint on its reference run's test sets; one result file each, written at
    once (and kept: a result newer than the checkpoint is read back instead of recomputed).
    With ``board``, results of fully trained runs are also submitted there with the run's
    config.json and log.jsonl."""
    from rnem_bench.evaluation import evaluate_run
    from rnem_bench.tasks import get_task
    from rnem_bench.training.checkpoint import BEST, atomic_write_text
    from rnem_bench.training.config import get_preset
    from rnem_bench.training.resolve import task_dataset

    full = bool(summary["finished"]) and preset == "paper"
    outcomes = []
    for ev in job.run.evaluate:
        if task is not None and get_task(task).train_task and ev.task != task:
            continue  # `reproduce balls678` scores only the extrapolation test
        path = out / "results" / ev.task / f"{job.run.name}-seed{job.seed}.json"
        best = job.rundir / BEST
        if path.exists() and best.exists() and path.stat().st_mtime > best.stat().st_mtime:
            click.echo(f"== scored {job.run.name} seed {job.seed} on {ev.task} at K={ev.k} (kept {path})")
            result = json.loads(path.read_text())
        else:
            dataset = task_dataset(get_task(ev.task), get_preset(preset), progress=False)
            click.echo(f"== evaluate {job.run.name} seed {job.seed} on {ev.task} at K={ev.k}")
            result = evaluate_run(job.rundir, task=ev.task, k=ev.k, dataset=dataset, device=device, cuda_graph=cuda_graph)
            atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        if board is not None and full:
            publish(path, job.rundir, board)
        outcomes.append(Outcome(job, ev.task, ev.k, paper_metrics(result), path, full))
    return outcomes


def board_outcomes(jobs: list[Job], board: Path, init: str = "original") -> list[Outcome]:
    """The outcomes of JOBS as submitted to BOARD: each of our entries (source rnem-bench, full
    training) whose model, training task, K, batch size, epochs and seed match a job's reference run and
    whose test task is one the reference run is scored on. Lets anyone judge the claims from the committed
    result files, without the checkpoints. Only entries trained from ``init`` count: the two
    initialisations are never mixed."""
    from rnem_bench.leaderboard.board import entries, entry_name, training_init

    outcomes = []
    by_key = {(j.run.model, j.run.task, j.run.k, j.run.batch_size, j.run.epochs, j.seed): j for j in jobs}
    for task in sorted({ev.task for j in jobs for ev in j.run.evaluate}):
        for result in entries(board, task):
            training, model = result.get("training") or {}, result["model"]
            if model.get("source") != "rnem-bench" or training.get("shortened", True) or len(result["seeds"]) != 1:
                continue
            if training_init(result) != init:
                continue
            job = by_key.get((model["name"], training.get("task"), training.get("k"), training.get("batch_size"),
                              training.get("epochs"), result["seeds"][0]))
            if job is None or not any(ev.task == task and ev.k == model["k"] for ev in job.run.evaluate):
                continue
            path = board / task / entry_name(result)
            outcomes.append(Outcome(job, task, model["k"], paper_metrics(result), path, True))
    return outcomes


def publish(result_path: Path, rundir: Path, board: Path) -> None:
    """Submit a result to ``board`` (skipped if already there) and put the run's config.json and
    log.jsonl beside it in ``<board>/<task>/runs/<entry>/``, so the entry shows how it was trained."""
    import shutil

    from rnem_bench.evaluation.results import read_result
    from rnem_bench.leaderboard.board import entry_name, submit
    from rnem_bench.training.checkpoint import CONFIG, LOG

    result = read_result(result_path)
    target = board / result["task"] / entry_name(result)
    if not target.exists():
        target = submit(result_path, board)
        click.echo(f"   submitted {target}")
    files = board / result["task"] / "runs" / target.stem
    files.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, LOG):
        shutil.copyfile(rundir / name, files / name)
