"""The runs ``rnem-bench reproduce`` trains: one ``Job`` per (reference run, seed), chosen by task,
tier, names and seeds, trained (or resumed, or skipped when finished) one at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.reproduce.reference_runs import ReferenceRun, load_reference_runs, runs_for

T = TypeVar("T")


@dataclass(frozen=True, eq=False)  # hashed by identity: a reference run holds dicts
class Job:
    run: ReferenceRun
    seed: int
    rundir: Path


def select_jobs(task: str | None, out: Path, models: str | None, seeds: int | None, baselines: Path,
                tier: str | None = None, only_seeds: tuple[int, ...] = ()) -> list[Job]:
    """The (reference run, seed) runs of TASK, or of every reference run training on a task of TIER; ONLY_SEEDS,
    when given, keeps just those of each reference run's seeds (e.g. the seeds another machine has not run)."""
    from rnem_bench.tasks import get_task

    runs = load_reference_runs(baselines)
    if task is not None:
        chosen = runs_for(task, runs)
    else:
        chosen = [r for r in runs.values() if get_task(r.task).tier == tier]
        if not chosen:
            raise RnemBenchError(f"no reference run trains on a task of tier '{tier}'")
    scope = f"'{task}'" if task else f"tier '{tier}'"
    if models:
        wanted = {m.strip() for m in models.split(",") if m.strip()}
        unknown = wanted - {r.name for r in chosen} - {r.model for r in chosen}
        if unknown:
            raise RnemBenchError(f"--models: {', '.join(sorted(unknown))} match no reference run for {scope} "
                                 f"(reference runs: {', '.join(r.name for r in chosen)})")
        chosen = [r for r in chosen if r.name in wanted or r.model in wanted]
    if seeds is not None and seeds < 1:
        raise RnemBenchError(f"--seeds must be >= 1, got {seeds}")
    jobs = [Job(r, s, out / r.name / f"seed{s}") for r in chosen for s in r.seeds[: seeds or len(r.seeds)]]
    if only_seeds:
        jobs = [j for j in jobs if j.seed in only_seeds]
        if not jobs:
            raise RnemBenchError(f"--seed {', '.join(map(str, only_seeds))}: no chosen reference run lists that seed "
                                 f"(reference runs list: {', '.join(f'{r.name} {r.seeds}' for r in chosen)})")
    # A tier runs one seed of every reference run before the extra seeds: an interrupted tier has covered
    # every model first.
    return jobs if task is not None else sorted(jobs, key=lambda j: j.seed)


def job_config(job: Job, preset: str, device: str, progress: bool):
    """The run config of a reference run: the reference run's caps at the paper preset, the preset's otherwise."""
    from rnem_bench.training.resolve import make_config

    r, paper = job.run, preset == "paper"
    return make_config(
        r.model, r.task, preset, k=r.k, noise=r.noise, seed=job.seed, lr=r.lr, device=device,
        epochs=r.epochs if paper else None, batch_size=r.batch_size if paper else None,
        patience=r.patience if paper else None, n_actions=r.n_actions, progress=progress,
    )


def run_jobs(jobs: list[Job], preset: str, device: str, budget_s: float | None, progress: bool,
             score: Callable[[Job, dict], list[T]] | None = None) -> tuple[dict[Job, dict], list[T]]:
    """Train (or resume, or skip if finished) every job, one at a time, and ``score`` each as soon
    as its training ends, so its result files exist even if a later run is interrupted.
    Returns each job's training summary and what ``score`` returned (``scoring.Outcome``s)."""
    from rnem_bench.training import checkpoint as ckpt
    from rnem_bench.training.harness import train

    # Finished runs cost no budget: share it among the others. train() on a finished run only
    # reloads it and returns its summary.
    unfinished = [j for j in jobs if not (ckpt.read_summary(j.rundir) or {}).get("finished")]
    summaries: dict[Job, dict] = {}
    outcomes: list[T] = []
    start = time.perf_counter()
    for job in jobs:
        share = None
        if budget_s is not None and job in unfinished:
            left = len(unfinished) - unfinished.index(job)
            share = max(0.0, budget_s - (time.perf_counter() - start)) / left
        config = job_config(job, preset, device, progress)
        verb = "train" if job in unfinished else "trained"  # a finished run is only reloaded
        click.echo(f"== {verb} {job.run.name} seed {job.seed} -> {job.rundir}"
                   f"{'' if share is None else f' (budget {share / 60:.1f} min)'}")
        summaries[job] = train(config, job.rundir, resume=True, progress=progress, time_limit=share)
        if score is not None:
            outcomes += score(job, summaries[job])
    return summaries, outcomes


def finished_jobs(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(jobs whose training has finished, the others), in order."""
    from rnem_bench.training import checkpoint as ckpt

    done = [j for j in jobs if (ckpt.read_summary(j.rundir) or {}).get("finished")]
    return done, [j for j in jobs if j not in done]
