"""The runs ``rnem-bench reproduce`` trains: one ``Job`` per (reference run, seed), chosen by task,
tier, names and seeds, trained (or resumed, or skipped when finished) one at a time, or with
``--jobs N`` N at a time, each in a process of its own."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.reproduce.reference_runs import ReferenceRun, load_reference_runs, runs_for
from rnem_bench.signals import Interrupted, signal_name, stop_on_signals

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


def job_config(job: Job, preset: str, device: str, progress: bool, cuda_graph: bool = False):
    """The run config of a reference run: the reference run's caps at the paper preset, the preset's
    otherwise; ``cuda_graph``: updates replayed as a CUDA graph (where it can act: one process on CUDA)."""
    from rnem_bench.training.resolve import make_config

    r, paper = job.run, preset == "paper"
    return make_config(
        r.model, r.task, preset, k=r.k, noise=r.noise, seed=job.seed, lr=r.lr, device=device,
        epochs=r.epochs if paper else None, batch_size=r.batch_size if paper else None,
        patience=r.patience if paper else None, n_actions=r.n_actions, progress=progress, cuda_graph=cuda_graph,
    )


def run_jobs(jobs: list[Job], preset: str, device: str, budget_s: float | None, progress: bool,
             score: Callable[[Job, dict], list[T]] | None = None, parallel: int = 1,
             cuda_graph: bool = False) -> tuple[dict[Job, dict], list[T]]:
    """Train (or resume, or skip if finished) every job and ``score`` each as soon as its training
    ends, so its result files exist even if a later run is interrupted: one at a time here, or
    ``parallel`` at a time in processes of their own (``run_concurrently``).
    Returns each job's training summary and what ``score`` returned (``scoring.Outcome``s), in job order."""
    if parallel > 1:
        return run_concurrently(jobs, preset, device, budget_s, progress, score, parallel, cuda_graph)
    from rnem_bench.training.harness import train

    budget = Budget(budget_s, unfinished_jobs(jobs))
    summaries: dict[Job, dict] = {}
    outcomes: list[T] = []
    for job in jobs:
        share = budget.share(job)
        config = job_config(job, preset, device, progress, cuda_graph)
        click.echo(start_line(job, budget, share))
        summaries[job] = train(config, job.rundir, resume=True, progress=progress, time_limit=share)
        if score is not None:
            outcomes += score(job, summaries[job])
    return summaries, outcomes


def unfinished_jobs(jobs: list[Job]) -> list[Job]:
    """The jobs whose training has not finished (train() on a finished run only reloads it)."""
    from rnem_bench.training import checkpoint as ckpt

    return [j for j in jobs if not (ckpt.read_summary(j.rundir) or {}).get("finished")]


@dataclass
class Budget:
    """``--budget``: training seconds for the whole command. Finished runs cost none; each other run
    gets, when it starts, an even share of what is left among the waves of runs still to start
    (``parallel`` runs train at once: a wave)."""

    seconds: float | None
    unfinished: list[Job]
    parallel: int = 1
    start: float = field(default_factory=time.perf_counter)

    def share(self, job: Job) -> float | None:
        if self.seconds is None or job not in self.unfinished:
            return None
        left = len(self.unfinished) - self.unfinished.index(job)  # this one and those after it
        return max(0.0, self.seconds - (time.perf_counter() - self.start)) / math.ceil(left / self.parallel)


def start_line(job: Job, budget: Budget, share: float | None, log: Path | None = None) -> str:
    verb = "train" if job in budget.unfinished else "trained"  # a finished run is only reloaded
    notes = ([] if share is None else [f"budget {share / 60:.1f} min"]) + ([] if log is None else [f"log {log}"])
    return f"== {verb} {job.run.name} seed {job.seed} -> {job.rundir}" + (f" ({'; '.join(notes)})" if notes else "")


# --------------------------------------------------------------------------- --jobs N
JOB_LOG = "job.log"  # in the run dir: what a job run in its own process prints


@dataclass
class JobEnd:
    """What a job's process sends back: its summary and scores, or why it ended without them."""

    summary: dict | None = None
    outcomes: list = field(default_factory=list)
    signum: int | None = None   # stopped by this signal, resumably
    error: str | None = None    # failed (the traceback is in the job's log)


def run_concurrently(jobs: list[Job], preset: str, device: str, budget_s: float | None, progress: bool,
                     score: Callable[[Job, dict], list[T]] | None, parallel: int,
                     cuda_graph: bool = False) -> tuple[dict[Job, dict], list[T]]:
    """``run_jobs`` with up to ``parallel`` jobs at once, each in a spawned process with
    ``torch.get_num_threads() // parallel`` threads (on CUDA all on the same GPU), training and
    scoring exactly as one at a time, without progress bars; ``score`` must pickle (a module-level
    function or a partial), and the data it reads must exist. A job's output goes to
    ``<rundir>/job.log``; here one line when it starts and one when it ends.

    Missing training data is generated here first, once (the jobs' processes would race to write
    it). Each job's process has a session of its own, so that Ctrl-C reaches only this process,
    which passes the signal on once to every job; each stops as ``rnem-bench run`` does, resumably,
    and ``Interrupted`` is raised when all have. A job that fails stops the others the same way."""
    import multiprocessing

    import torch

    configs = {job: job_config(job, preset, device, progress, cuda_graph) for job in jobs}
    threads = max(1, torch.get_num_threads() // parallel)
    pool = JobProcesses(multiprocessing.get_context("spawn"), parallel)
    budget = Budget(budget_s, unfinished_jobs(jobs), parallel)
    pending, ends = list(jobs), {}
    with stop_on_signals() as stop:
        try:
            while pending or pool.running:
                if stop.requested and not pool.stopping:
                    pool.stop_all(stop.signum)
                if pool.stopping:
                    pending.clear()  # not started: nothing to save
                while pending and pool.free:
                    job = pending.pop(0)
                    share = budget.share(job)
                    click.echo(start_line(job, budget, share, job.rundir / JOB_LOG))
                    pool.start(job, job_process, configs[job], share, threads, score)
                for job, end in pool.ended(timeout=0.5):
                    ends[job] = end
                    click.echo(end_line(job, end))
                    if end.summary is None and not pool.stopping:  # stopped or failed: stop the others too
                        pool.stop_all(end.signum or signal.SIGTERM)
        except Interrupted as now:  # a second signal: pass it on (the jobs stop at once), wait for them
            pool.stop_all(now.signum, again=True)
            pool.join()
            raise
    return _results(jobs, ends, pool.signum)


def _results(jobs: list[Job], ends: dict[Job, JobEnd], signum: int | None) -> tuple[dict[Job, dict], list]:
    """Summaries and outcomes in job order, or the first failure, or ``Interrupted``."""
    failed = [(job, end) for job, end in ends.items() if end.error is not None and end.signum is None]
    if failed:
        job, end = failed[0]
        raise RnemBenchError(f"{job.run.name} seed {job.seed} failed: {end.error} (its log: {job.rundir / JOB_LOG}); "
                             "any other unfinished job stopped resumably")
    stopped = [job for job in jobs if job not in ends or ends[job].summary is None]
    if stopped:
        signum = signum or signal.SIGTERM
        raise Interrupted(signum, f"stopped by {signal_name(signum)}: {len(stopped)} of {len(jobs)} job(s) unfinished, "
                                  "each saved where it stood")
    return ({job: ends[job].summary for job in jobs}, [o for job in jobs for o in ends[job].outcomes])


def end_line(job: Job, end: JobEnd) -> str:
    name = f"{job.run.name} seed {job.seed}"
    if end.summary is not None:
        s = end.summary
        scored = f"; {len(end.outcomes)} result(s)" if end.outcomes else ""
        best = "none" if s["best_valid_loss"] is None else f"{s['best_valid_loss']:.3f}"
        return f"== done {name}: {s['stop_reason']} after {s['epochs']} epochs ({s['updates']} updates), best valid loss {best}{scored}"
    if end.signum is not None:
        return f"== stopped {name} by {signal_name(end.signum)} (resumable; log {job.rundir / JOB_LOG})"
    return f"== failed {name}: {end.error} (log {job.rundir / JOB_LOG})"


class JobProcesses:
    """The jobs' processes: start them, collect what each sends back, pass stop signals on."""

    def __init__(self, context: Any, size: int):
        self.context, self.size = context, size
        self.running: dict[Connection, tuple[Job, Any]] = {}  # our end of its pipe -> (job, process)
        self.signum: int | None = None                         # the stop signal passed on, once

    @property
    def free(self) -> bool:
        return len(self.running) < self.size

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    def start(self, job: Job, target: Callable[..., None], *args: Any) -> None:
        ours, theirs = self.context.Pipe(duplex=False)
        process = self.context.Process(target=target, args=(job, *args, theirs), name=f"{job.run.name}-seed{job.seed}")
        process.start()
        theirs.close()  # the child holds its end: a child that dies without sending reads as EOF
        self.running[ours] = (job, process)

    def ended(self, timeout: float) -> list[tuple[Job, JobEnd]]:
        """The jobs that ended within ``timeout`` seconds, with what they sent back."""
        from multiprocessing.connection import wait

        ends = []
        for conn in wait(list(self.running), timeout):
            job, process = self.running.pop(conn)
            try:
                end = conn.recv()
            except EOFError:  # it died without a word: killed, or a signal hit it outside training
                end = (JobEnd(signum=self.signum) if self.stopping
                       else JobEnd(error=f"its process ended with exit status {process.exitcode}"))
            process.join()
            ends.append((job, end))
        return ends

    def stop_all(self, signum: int, again: bool = False) -> None:
        """Pass ``signum`` on to every running job (once, unless ``again``: the second means now)."""
        if self.stopping and not again:
            return
        self.signum = self.signum or signum
        for _, process in self.running.values():
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    def join(self) -> None:
        for _, process in self.running.values():
            process.join()


def job_process(job: Job, config: Any, share: float | None, threads: int,
                score: Callable[[Job, dict], list] | None, conn: Connection) -> None:
    """One job in its own process: train and score as ``run_jobs`` does, print into the job's log,
    send a ``JobEnd`` back."""
    os.setsid()  # first: Ctrl-C in the terminal reaches the parent only, which passes the signal on once
    _print_to(job.rundir / JOB_LOG)
    import torch

    from rnem_bench.training.harness import train

    torch.set_num_threads(threads)
    print(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {job.run.name} seed {job.seed}: process {os.getpid()}, "
          f"{threads} thread(s)", flush=True)
    try:
        summary = train(config, job.rundir, resume=True, progress=False, time_limit=share)
        end = JobEnd(summary, score(job, summary) if score is not None else [])
    except Interrupted as stop:
        print(stop, flush=True)
        end = JobEnd(signum=stop.signum)
    except Exception as err:  # noqa: BLE001 - reported to the parent in one line, in full here
        traceback.print_exc()
        end = JobEnd(error=f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0][:300]}")
    conn.send(end)
    conn.close()


def _print_to(path: Path) -> None:
    """Send this process's stdout and stderr (Python's and the C libraries') to the end of ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)


def finished_jobs(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(jobs whose training has finished, the others), in order."""
    unfinished = unfinished_jobs(jobs)
    return [j for j in jobs if j not in unfinished], unfinished
