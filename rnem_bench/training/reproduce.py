"""``rnem-bench reproduce TASK`` or ``--tier mini``: train the reference runs, evaluate them, compare.

For every recipe in ``baselines/`` that trains on (or is evaluated on) TASK, or that trains on a
task of the tier, and every seed, one run at a time: generate the data if missing, train into
``OUT/<recipe>/seed<S>`` (resuming what is there), then at once score the best checkpoint on each
of the recipe's test sets with the evaluator and write one result file per (recipe, seed, test
set) under ``OUT/results/<task>/``, ready for ``rnem-bench submit`` (``--submit BOARD`` does it).
A final table puts our figures beside the paper's and judges the paper's claims (``claims.py``).

``--budget MINUTES`` caps the training time of the whole command: it is shared evenly among the
runs that still need training, a run that hits its share stops resumably (rerun the command to
continue it) and is marked "shortened" in the results and the table. Figures from shortened runs
or from the quick/tiny presets are not reproductions of the paper.

``--from-board BOARD`` judges the claims from committed result files instead of runs, and
``--check-against BOARD`` holds fresh results against the committed ones (``repro_check.py``).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.training.claims import FAILS, HOLDS, NOT_MEASURED, check_claims
from rnem_bench.training.claims import claims_markdown as claims_md
from rnem_bench.training.baselines import BASELINES_DIR, BaselineRun, load_baselines, recipes_for
from rnem_bench.tasks import TIERS
from rnem_bench.training.config import PRESETS


@dataclass(frozen=True, eq=False)  # hashed by identity: a recipe holds dicts
class Job:
    recipe: BaselineRun
    seed: int
    rundir: Path


@dataclass(frozen=True)
class Outcome:
    """One scored (run, test set): the evaluator's metrics plus how the run was trained."""

    job: Job
    task: str                 # the test set's task
    k: int
    metrics: dict[str, Any]   # paper-facing metrics: ari, bce, relational_bce, relative_bce, ...
    result_file: Path
    full_training: bool       # finished by early stopping or the epoch cap, at the paper preset


# ------------------------------------------------------------------------------------ training
def select_jobs(task: str | None, out: Path, models: str | None, seeds: int | None, baselines: Path,
                tier: str | None = None, only_seeds: tuple[int, ...] = ()) -> list[Job]:
    """The (recipe, seed) runs of TASK, or of every recipe training on a task of TIER; ONLY_SEEDS,
    when given, keeps just those of each recipe's seeds (e.g. the seeds another machine has not run)."""
    from rnem_bench.tasks import get_task

    recipes = load_baselines(baselines)
    if task is not None:
        chosen = recipes_for(task, recipes)
    else:
        chosen = [r for r in recipes.values() if get_task(r.task).tier == tier]
        if not chosen:
            raise RnemBenchError(f"no baseline recipe trains on a task of tier '{tier}'")
    scope = f"'{task}'" if task else f"tier '{tier}'"
    if models:
        wanted = {m.strip() for m in models.split(",") if m.strip()}
        unknown = wanted - {r.name for r in chosen} - {r.model for r in chosen}
        if unknown:
            raise RnemBenchError(f"--models: {', '.join(sorted(unknown))} match no recipe for {scope} "
                                 f"(recipes: {', '.join(r.name for r in chosen)})")
        chosen = [r for r in chosen if r.name in wanted or r.model in wanted]
    if seeds is not None and seeds < 1:
        raise RnemBenchError(f"--seeds must be >= 1, got {seeds}")
    jobs = [Job(r, s, out / r.name / f"seed{s}") for r in chosen for s in r.seeds[: seeds or len(r.seeds)]]
    if only_seeds:
        jobs = [j for j in jobs if j.seed in only_seeds]
        if not jobs:
            raise RnemBenchError(f"--seed {', '.join(map(str, only_seeds))}: no chosen recipe lists that seed "
                                 f"(recipes list: {', '.join(f'{r.name} {r.seeds}' for r in chosen)})")
    # A tier runs one seed of every recipe before the extra seeds: an interrupted tier has covered
    # every model first.
    return jobs if task is not None else sorted(jobs, key=lambda j: j.seed)


def job_config(job: Job, preset: str, device: str, progress: bool):
    """The run config of a recipe: the recipe's caps at the paper preset, the preset's otherwise."""
    from rnem_bench.training.resolve import make_config

    r, paper = job.recipe, preset == "paper"
    return make_config(
        r.model, r.task, preset, k=r.k, noise=r.noise, seed=job.seed, lr=r.lr, device=device,
        epochs=r.epochs if paper else None, batch_size=r.batch_size if paper else None,
        patience=r.patience if paper else None, n_actions=r.n_actions, progress=progress,
    )


def run_jobs(jobs: list[Job], preset: str, device: str, budget_s: float | None, progress: bool,
             score: Callable[[Job, dict], list[Outcome]] | None = None) -> tuple[dict[Job, dict], list[Outcome]]:
    """Train (or resume, or skip if finished) every job, one at a time, and ``score`` each as soon
    as its training ends, so its result files exist even if a later run is interrupted.
    Returns each job's training summary and the outcomes."""
    from rnem_bench.training import checkpoint as ckpt
    from rnem_bench.training.harness import train

    # Finished runs cost no budget: share it among the others. train() on a finished run only
    # reloads it and returns its summary.
    unfinished = [j for j in jobs if not (ckpt.read_summary(j.rundir) or {}).get("finished")]
    summaries: dict[Job, dict] = {}
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for job in jobs:
        share = None
        if budget_s is not None and job in unfinished:
            left = len(unfinished) - unfinished.index(job)
            share = max(0.0, budget_s - (time.perf_counter() - start)) / left
        config = job_config(job, preset, device, progress)
        verb = "train" if job in unfinished else "trained"  # a finished run is only reloaded
        click.echo(f"== {verb} {job.recipe.name} seed {job.seed} -> {job.rundir}"
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


# ---------------------------------------------------------------------------------- evaluation
# The paper-facing figures, read from a result file's "metrics" (written by the evaluator).
# Each is a number, or a per-step list that we average (simulation BCE over simulated steps).
METRIC_KEYS: dict[str, str] = {
    "ari": "ari_mean",
    "bce": "bce_last",
    "relational_bce": "relational_bce_last",
    "relative_bce": "relative_bce_last",
    "relative_relational_bce": "relative_relational_bce_last",
    "simulation_bce": "simulation_bce",
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
                 board: Path | None = None) -> list[Outcome]:
    """Score a job's best checkpoint on its recipe's test sets; one result file each, written at
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
    for ev in job.recipe.evaluate:
        if task is not None and get_task(task).train_task and ev.task != task:
            continue  # `reproduce balls678` scores only the extrapolation test
        path = out / "results" / ev.task / f"{job.recipe.name}-seed{job.seed}.json"
        best = job.rundir / BEST
        if path.exists() and best.exists() and path.stat().st_mtime > best.stat().st_mtime:
            click.echo(f"== scored {job.recipe.name} seed {job.seed} on {ev.task} at K={ev.k} (kept {path})")
            result = json.loads(path.read_text())
        else:
            dataset = task_dataset(get_task(ev.task), get_preset(preset), progress=False)
            click.echo(f"== evaluate {job.recipe.name} seed {job.seed} on {ev.task} at K={ev.k}")
            result = evaluate_run(job.rundir, task=ev.task, k=ev.k, dataset=dataset, device=device)
            atomic_write_text(path, json.dumps(result, indent=2) + "\n")
        if board is not None and full:
            publish(path, job.rundir, board)
        outcomes.append(Outcome(job, ev.task, ev.k, paper_metrics(result), path, full))
    return outcomes


def board_outcomes(jobs: list[Job], board: Path) -> list[Outcome]:
    """The outcomes of JOBS as submitted to BOARD: each of our entries (source rnem-bench, full
    training) whose model, training task, K, batch size, epochs and seed match a job's recipe and
    whose test task is one the recipe is scored on. Lets anyone judge the claims from the committed
    result files, without the checkpoints."""
    from rnem_bench.leaderboard.board import entries, entry_name

    outcomes = []
    by_key = {(j.recipe.model, j.recipe.task, j.recipe.k, j.recipe.batch_size, j.recipe.epochs, j.seed): j for j in jobs}
    for task in sorted({ev.task for j in jobs for ev in j.recipe.evaluate}):
        for result in entries(board, task):
            training, model = result.get("training") or {}, result["model"]
            if model.get("source") != "rnem-bench" or training.get("shortened", True) or len(result["seeds"]) != 1:
                continue
            job = by_key.get((model["name"], training.get("task"), training.get("k"), training.get("batch_size"),
                              training.get("epochs"), result["seeds"][0]))
            if job is None or not any(ev.task == task and ev.k == model["k"] for ev in job.recipe.evaluate):
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


# ------------------------------------------------------------------------------ the comparison
COLUMNS = (("ari", "ARI"), ("bce", "BCE last"), ("relational_bce", "relational BCE last"),
           ("relative_bce", "BCE / copy"), ("relative_relational_bce", "relational BCE / copy"), ("simulation_bce", "sim. BCE"))


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(outcomes: list[Outcome]) -> dict[tuple[str, str], dict[str, Any]]:
    """(recipe, test task) -> K, seeds, full-training flag and mean/sd of each metric over seeds."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for o in outcomes:
        row = rows.setdefault((o.job.recipe.name, o.task), {"k": o.k, "seeds": [], "full": True, "values": {}, "recipe": o.job.recipe})
        row["seeds"].append(o.job.seed)
        row["full"] = row["full"] and o.full_training
        for name, value in o.metrics.items():
            row["values"].setdefault(name, []).append(value)
    for row in rows.values():
        row["stats"] = {name: _mean_sd(v) for name, v in row["values"].items()}
    return rows


def print_table(rows: dict[tuple[str, str], dict[str, Any]], preset: str, tier: str = "paper") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rnem-bench reproduce: ours (mean ± sd over seeds) | paper", show_lines=False)
    for header in ("recipe", "test", "K", "seeds", "training"):
        table.add_column(header)
    for _, header in COLUMNS:
        table.add_column(header, justify="right")
    for (name, task), row in sorted(rows.items()):
        paper = row["recipe"].paper.get(task, {})
        cells = []
        for metric, _ in COLUMNS:
            ours = row["stats"].get(metric)
            text = "—" if ours is None else (f"{ours[0]:.3g}" + (f" ± {ours[1]:.2g}" if len(row["seeds"]) > 1 else ""))
            if metric in paper:
                text += f" | {paper[metric]:g}"
            cells.append(text)
        training = "full" if row["full"] else ("shortened" if preset == "paper" else f"preset {preset}")
        table.add_row(name, task, str(row["k"]), str(len(row["seeds"])), training, *cells)
    console = Console()
    if not console.is_terminal:  # logs and pipes: do not squeeze 11 columns into 80 characters
        console = Console(width=200)
    console.print(table)
    colours = {HOLDS: "green", FAILS: "red", NOT_MEASURED: "yellow"}
    for v in check_claims(rows, tier):
        console.print(f"  {v.claim.id} [{colours[v.status]}]{v.status:>13}[/]  {v.claim.text}\n"
                      f"  {'':16}{v.numbers}", soft_wrap=True)
    if any(not row["full"] for row in rows.values()):
        console.print("[yellow]Rows not marked 'full' come from a shortened budget or a small preset: "
                      "they are not reproductions of the paper.[/]")


def write_summary(out: Path, task: str, preset: str, summaries: dict[Job, dict],
                  rows: dict[tuple[str, str], dict[str, Any]], tier: str = "paper") -> Path:
    from rnem_bench.training.checkpoint import atomic_write_text

    report = {
        "task": task, "preset": preset,
        "runs": [{"recipe": j.recipe.name, "seed": j.seed, "rundir": str(j.rundir), **s} for j, s in summaries.items()],
        "rows": [{"recipe": name, "test": t, "k": r["k"], "seeds": r["seeds"], "full_training": r["full"],
                  "ours": {m: {"mean": v[0], "sd": v[1]} for m, v in r["stats"].items()},
                  "paper": r["recipe"].paper.get(t, {})} for (name, t), r in sorted(rows.items())],
        "claims": [{"id": v.claim.id, "claim": v.claim.text, "verdict": v.status, "numbers": v.numbers}
                   for v in check_claims(rows, tier)],
    }
    path = out / "results" / f"reproduce-{task}.json"
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return path


def show_comparison(outcomes: list[Outcome], preset: str, tier: str, claims_markdown: Path | None) -> dict:
    """Print the table and the claims of the scored outcomes (and write the claims as Markdown
    when asked); returns the aggregated rows."""
    rows = aggregate(outcomes)
    print_table(rows, preset, tier)
    if claims_markdown is not None:
        claims_markdown.write_text(claims_md(check_claims(rows, tier)))
        click.echo(f"wrote {claims_markdown}")
    return rows


# --------------------------------------------------------------------------------------- command
@click.command()
@click.argument("task", required=False)
@click.option("--tier", type=click.Choice(TIERS), default=None,
              help="Run every recipe of a tier instead of one TASK (mini: the CPU tier).")
@click.option("--models", default=None, help="Comma-separated recipe names or model names (default: every recipe).")
@click.option("--seeds", type=int, default=None, help="Run the first N seeds of each recipe (default: all it lists).")
@click.option("--seed", "only_seeds", type=int, multiple=True,
              help="Run only this seed of each recipe (repeatable), e.g. the seeds not yet run elsewhere.")
@click.option("--budget", type=float, default=None, help="Training minutes for the whole command, shared among unfinished runs.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="paper", show_default=True,
              help="paper: canonical data and the recipes' caps; quick/tiny: small smoke runs (not reproductions).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/reproduce"), show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--baselines", type=click.Path(path_type=Path), default=BASELINES_DIR, show_default=True,
              help="Folder of recipe files.")
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
@click.option("--quiet", is_flag=True, help="No progress bars.")
def reproduce(task, tier, models, seeds, only_seeds, budget, preset, out, device, baselines, no_evaluate, board, report,
              from_board, claims_markdown, check_against, quiet):
    """Train, evaluate and compare the paper's reference runs for TASK (balls4, balls678, curtain,
    invaders, or a mini task), or for every task of a tier, and check the paper's claims.

    \b
    rnem-bench reproduce --tier mini                      # the CPU tier: every recipe, one run at a time
    rnem-bench reproduce --tier mini --from-board leaderboards   # judge the claims from the committed results
    rnem-bench reproduce balls4                           # all six balls4 recipes, 3 seeds each (GPU)
    rnem-bench reproduce curtain --models rnem --seeds 1 --budget 120
    rnem-bench reproduce balls4 --preset tiny --seeds 1   # a one-minute smoke test on a CPU
    rnem-bench reproduce --tier mini --models mini-balls4-rnem-k5 --seed 0 --out runs/check \\
        --check-against leaderboards                      # does a rerun reproduce the committed seed 0?
    """
    from rnem_bench.signals import Interrupted
    from rnem_bench.tasks import get_task
    from rnem_bench.training.resolve import resolve_device

    if (task is None) == (tier is None):
        raise RnemBenchError("name a TASK or a --tier (e.g. `rnem-bench reproduce --tier mini`), not both")
    if task is not None:
        tier = get_task(task).tier
    if budget is not None and budget <= 0:
        raise RnemBenchError(f"--budget must be > 0 minutes, got {budget}")
    for option, folder in (("--from-board", from_board), ("--check-against", check_against)):
        if folder is not None and not folder.is_dir():
            raise RnemBenchError(f"{option}: no leaderboard folder at {folder}")
    if check_against is not None and (from_board is not None or no_evaluate):
        raise RnemBenchError("--check-against compares fresh results: it cannot be combined with --from-board or --no-evaluate")
    jobs = select_jobs(task, out, models, seeds, baselines, tier, only_seeds)
    if from_board is not None:
        outcomes = board_outcomes(jobs, from_board)
        scored = {(o.job.recipe.name, o.job.seed) for o in outcomes}
        for job in jobs:
            if (job.recipe.name, job.seed) not in scored:
                click.echo(f"== not on the board: {job.recipe.name} seed {job.seed}")
        show_comparison(outcomes, preset, tier, claims_markdown)
        return
    score = None
    if not no_evaluate:
        device = resolve_device(device)
        score = lambda job, summary: evaluate_job(job, summary, task, preset, out, device, board)  # noqa: E731
    if report:
        if score is None:
            raise RnemBenchError("--report scores finished runs: it cannot be combined with --no-evaluate")
        jobs, pending = finished_jobs(jobs)
        for job in pending:
            click.echo(f"== not finished: {job.recipe.name} seed {job.seed} ({job.rundir})")
    try:
        summaries, outcomes = run_jobs(jobs, preset, device, None if budget is None else 60 * budget, not quiet, score)
    except Interrupted as stop:  # Ctrl-C or SIGTERM: the run in flight saved last.pt; exit 130 / 143
        click.echo(f"{stop}; rerun the same command to resume (finished runs and their results are kept)", err=True)
        raise
    if no_evaluate:
        for job, s in summaries.items():
            click.echo(f"{job.recipe.name} seed {job.seed}: {s['stop_reason']} after {s['epochs']} epochs, "
                       f"best valid loss {s['best_valid_loss']:.3f} ({job.rundir})")
        return
    rows = show_comparison(outcomes, preset, tier, claims_markdown)
    path = write_summary(out, task or f"tier-{tier}", preset, summaries, rows, tier)
    click.echo(f"result files: {out / 'results'}/<task>/  (submit each with `rnem-bench submit FILE`); summary: {path}")
    if check_against is not None:
        from rnem_bench.training.repro_check import check_reproduction, format_checks

        every_seed = select_jobs(task, out, models, None, baselines, tier)  # the spread needs all committed seeds
        for line in format_checks(check_reproduction(outcomes, board_outcomes(every_seed, check_against))):
            click.echo(line)
