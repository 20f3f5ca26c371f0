"""``rnem-bench reproduce TASK`` or ``--tier mini``: train the reference runs, evaluate them, compare.

For every reference run (``baselines/``) that trains on (or is evaluated on) TASK, or that trains
on a task of the tier, and every seed, one run at a time: generate the data if missing, train into
``OUT/<reference run>/seed<S>`` (resuming what is there), then at once score the best checkpoint
on each of the run's test sets with the evaluator and write one result file per (reference run,
seed, test set) under ``OUT/results/<task>/``, ready for ``rnem-bench submit`` (``--submit BOARD``
does it).
A final table puts our figures beside the paper's and judges the paper's claims (``claims.py``).

``--budget MINUTES`` caps the training time of the whole command: it is shared evenly among the
runs that still need training, a run that hits its share stops resumably (rerun the command to
continue it) and is marked "shortened" in the results and the table. Figures from shortened runs
or from the quick/tiny presets are not reproductions of the paper.

``--jobs N`` trains N runs at once, each in a process of its own with 1/N of the CPU threads (on
CUDA all on the same GPU), scored as each ends; each run's output goes to its ``job.log``.

``--from-board BOARD`` judges the claims from committed result files instead of runs, and
``--check-against BOARD`` holds fresh results against the committed ones (``check.py``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.reproduce.jobs import finished_jobs, run_jobs, select_jobs
from rnem_bench.reproduce.reference_runs import BASELINES_DIR
from rnem_bench.reproduce.report import show_comparison, write_summary
from rnem_bench.reproduce.scoring import board_outcomes, evaluate_job
from rnem_bench.tasks import TIERS
from rnem_bench.training.config import PRESETS


@click.command()
@click.argument("task", required=False)
@click.option("--tier", type=click.Choice(TIERS), default=None,
              help="Run every reference run of a tier instead of one TASK (mini: the CPU tier).")
@click.option("--models", default=None, help="Comma-separated reference run names or model names (default: every reference run).")
@click.option("--seeds", type=int, default=None, help="Run the first N seeds of each reference run (default: all it lists).")
@click.option("--seed", "only_seeds", type=int, multiple=True,
              help="Run only this seed of each reference run (repeatable), e.g. the seeds not yet run elsewhere.")
@click.option("--budget", type=float, default=None, help="Training minutes for the whole command, shared among unfinished runs.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="paper", show_default=True,
              help="paper: canonical data and the reference runs' caps; quick/tiny: small smoke runs (not reproductions).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/reproduce"), show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--jobs", "parallel", type=int, default=1, show_default=True,
              help="Train N runs at once, each in its own process with 1/N of the CPU threads (on CUDA, on the same "
                   "GPU); each run's output goes to RUNDIR/job.log, one line here when it starts and when it ends.")
@click.option("--baselines", type=click.Path(path_type=Path), default=BASELINES_DIR,
              show_default="the shipped baselines/", help="Folder of reference-run files.")
@click.option("--cuda-graph/--no-cuda-graph", default=False, show_default=True,
              help="On CUDA, replay each training update, validation and test batch as a CUDA graph (training/step.py).")
@click.option("--no-evaluate", is_flag=True, help="Only train (e.g. on a GPU machine); evaluate in a later call.")
@click.option("--submit", "board", type=click.Path(path_type=Path), default=None,
              help="Also submit each fully trained result to this leaderboard folder (e.g. leaderboards), "
                   "with the run's config.json and log.jsonl.")
@click.option("--report", is_flag=True,
              help="Train nothing: score the runs whose training has finished and print the table and claims.")
@click.option("--from-board", type=click.Path(path_type=Path), default=None,
              help="Train nothing: judge the claims from the result files on this leaderboard folder "
                   "(e.g. leaderboards) instead of the runs in --out.")
@click.option("--claims-markdown", type=click.Path(path_type=Path), default=None,
              help="Also write the claims table as Markdown to this file.")
@click.option("--check-against", type=click.Path(path_type=Path), default=None,
              help="Compare each fresh result with the committed result of the same seed on this leaderboard "
                   "folder, against the seed-to-seed spread there (a reproduction check).")
@click.option("--init", "init", type=click.Choice(["original", "pytorch"]), default="original", show_default=True,
              help="With --from-board or --check-against: judge the entries trained from this initialisation "
                   "(entries from before it was recorded are pytorch); the two are never mixed.")
@click.option("--list", "list_only", is_flag=True,
              help="Train nothing: list the chosen reference runs and seeds (and where their files are read from).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def reproduce(task, tier, models, seeds, only_seeds, budget, preset, out, device, parallel, baselines, cuda_graph, no_evaluate, board,
              report, from_board, claims_markdown, check_against, init, list_only, quiet):
    """Train, evaluate and compare the paper's reference runs for TASK (balls4, balls678, curtain,
    invaders, or a mini task), or for every task of a tier, and check the paper's claims.

    \b
    rnem-bench reproduce --tier mini                      # the CPU tier: every reference run, one run at a time
    rnem-bench reproduce --tier mini --from-board leaderboards   # judge the claims from the committed results
    rnem-bench reproduce balls4                           # all six balls4 reference runs, 3 seeds each (GPU)
    rnem-bench reproduce curtain --models rnem --seeds 1 --budget 120
    rnem-bench reproduce balls4 --preset tiny --seeds 1   # a one-minute smoke test on a CPU
    rnem-bench reproduce balls4 --models balls4-rnem-k5 --jobs 3   # its 3 seeds at once (e.g. on one GPU)
    rnem-bench reproduce --tier mini --models mini-balls4-rnem-k5 --seed 0 --out runs/check \\
        --check-against leaderboards                      # does a rerun reproduce the committed seed 0?
    """
    from rnem_bench.signals import Interrupted
    from rnem_bench.tasks import get_task
    from rnem_bench.device import resolve_device

    if (task is None) == (tier is None):
        raise RnemBenchError("name a TASK or a --tier (e.g. `rnem-bench reproduce --tier mini`), not both")
    if task is not None:
        tier = get_task(task).tier
    if budget is not None and budget <= 0:
        raise RnemBenchError(f"--budget must be > 0 minutes, got {budget}")
    if parallel < 1:
        raise RnemBenchError(f"--jobs must be >= 1, got {parallel}")
    for option, folder in (("--from-board", from_board), ("--check-against", check_against)):
        if folder is not None and not folder.is_dir():
            raise RnemBenchError(f"{option}: no leaderboard folder at {folder}")
    if check_against is not None and (from_board is not None or no_evaluate):
        raise RnemBenchError("--check-against compares fresh results: it cannot be combined with --from-board or --no-evaluate")
    jobs = select_jobs(task, out, models, seeds, baselines, tier, only_seeds)
    if list_only:
        click.echo(f"reference runs from {Path(baselines).resolve()}:")
        for job in jobs:
            r = job.run
            click.echo(f"{r.name:<26} seed {job.seed}  {r.model} on {r.task}, K={r.k}, batch {r.batch_size}, "
                       f"<= {r.epochs} epochs -> {job.rundir}")
        return
    if from_board is not None:
        outcomes = board_outcomes(jobs, from_board, init)
        scored = {(o.job.run.name, o.job.seed) for o in outcomes}
        for job in jobs:
            if (job.run.name, job.seed) not in scored:
                click.echo(f"== not on the board: {job.run.name} seed {job.seed}")
        show_comparison(outcomes, preset, tier, claims_markdown)
        return
    score = None
    if not no_evaluate:
        device = resolve_device(device)
        # a partial, not a lambda: with --jobs it is sent to the jobs' processes
        score = partial(evaluate_job, task=task, preset=preset, out=out, device=device, board=board, cuda_graph=cuda_graph)
        if parallel > 1:
            generate_test_sets(jobs, preset, not quiet)
    if report:
        if score is None:
            raise RnemBenchError("--report scores finished runs: it cannot be combined with --no-evaluate")
        jobs, pending = finished_jobs(jobs)
        for job in pending:
            click.echo(f"== not finished: {job.run.name} seed {job.seed} ({job.rundir})")
    try:
        summaries, outcomes = run_jobs(jobs, preset, device, None if budget is None else 60 * budget, not quiet, score,
                                       parallel, cuda_graph)
    except Interrupted as stop:  # Ctrl-C or SIGTERM: the run in flight saved last.pt; exit 130 / 143
        click.echo(f"{stop}; rerun the same command to resume (finished runs and their results are kept)", err=True)
        raise
    if no_evaluate:
        for job, s in summaries.items():
            click.echo(f"{job.run.name} seed {job.seed}: {s['stop_reason']} after {s['epochs']} epochs, "
                       f"best valid loss {s['best_valid_loss']:.3f} ({job.rundir})")
        return
    rows = show_comparison(outcomes, preset, tier, claims_markdown)
    path = write_summary(out, task or f"tier-{tier}", preset, summaries, rows, tier)
    click.echo(f"result files: {out / 'results'}/<task>/  (submit each with `rnem-bench submit FILE`); summary: {path}")
    if check_against is not None:
        from rnem_bench.reproduce.check import check_reproduction, format_checks

        every_seed = select_jobs(task, out, models, None, baselines, tier)  # the spread needs all committed seeds
        for line in format_checks(check_reproduction(outcomes, board_outcomes(every_seed, check_against, init))):
            click.echo(line)


def generate_test_sets(jobs, preset: str, progress: bool) -> None:
    """Every test set the jobs are scored on, generated here if missing: with --jobs the jobs'
    processes would otherwise race to write the same dataset."""
    from rnem_bench.tasks import get_task
    from rnem_bench.training.config import get_preset
    from rnem_bench.training.resolve import task_dataset

    for name in sorted({ev.task for job in jobs for ev in job.run.evaluate}):
        task_dataset(get_task(name), get_preset(preset), progress)
