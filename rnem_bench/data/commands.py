"""CLI commands about datasets: ``generate``, ``info``, ``verify``, ``show`` and the ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

from rnem_bench.cli_tools import LazyGroup
from rnem_bench.data.cli_options import (  # noqa: F401  (parse_range and custom_recipe: re-exported)
    custom_recipe, generation_options, parse_range, run_generation,
)
from rnem_bench.errors import RnemBenchError
from rnem_bench.recipes import Recipe, parse_splits


# ----------------------------------------------------------------------------------- generate
# `generate invaders` lives with the ALE code: imported (with ale-py) only when used.
@click.group(cls=LazyGroup, lazy={"invaders": "rnem_bench.dqn.commands:generate_invaders"}, invoke_without_command=True)
@click.option("--task", "task_name", default=None, help="Generate a task's canonical dataset (balls4, balls678, curtain, invaders, mini-balls4, mini-balls678, mini-curtain).")
@generation_options
@click.pass_context
def generate(ctx, task_name, n_seq, out, seed, workers, scheduler, chunk_size, quiet):
    """Generate a dataset: `generate --task balls4`, or `generate balls|curtain|invaders [OPTIONS]`."""
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params
                 if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:  # they belong to the generator: silently dropping them would run the default sizes
            raise RnemBenchError(f"put {', '.join(given)} after the generator name: "
                                 f"`rnem-bench generate {ctx.invoked_subcommand} {' '.join(given)} ...`")
        return
    if task_name is None:
        click.echo(ctx.get_help())
        return
    from rnem_bench.tasks import get_task

    task = get_task(task_name)
    splits = parse_splits(n_seq) if n_seq else None
    recipe = task.recipe(splits=splits, seed=seed)
    if recipe.chunk_size != chunk_size:
        recipe = Recipe(**{**recipe.__dict__, "chunk_size": chunk_size})
    canonical = recipe.fingerprint() == task.recipe().fingerprint()
    name = task.name if canonical else f"{task.name}-{recipe.fingerprint()}"
    if not canonical:
        click.echo(f"note: sizes/seed differ from the canonical {task.name} recipe; results on it cannot enter the leaderboard")
    run_generation(recipe, out, name, workers, scheduler, quiet)


def _ball_options(n_balls_default: str):
    """Options of the ball generators (balls, curtain)."""
    options = [
        click.option("--n-balls", default=n_balls_default, show_default=True, help="Balls per sequence: N or MIN-MAX."),
        click.option("--steps", type=int, default=30, show_default=True, help="Model steps; steps+1 frames are stored."),
        click.option("--image-size", type=int, default=64, show_default=True),
        click.option("--radius", type=float, default=1.2, show_default=True, help="Light ball radius in world units (world is 10 wide)."),
        click.option("--speed", type=float, default=0.25, show_default=True, help="Mean speed, world units per frame."),
        click.option("--heavy-mass-ratio", type=float, default=6.0, show_default=True),
        click.option("--heavy-radius-ratio", type=float, default=1.25, show_default=True),
    ]

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


@generate.command("balls")
@generation_options
@click.option("--heavy-prob", type=float, default=0.5, show_default=True, help="Chance that a ball is heavy.")
@_ball_options("4")
def generate_balls(n_seq, out, seed, workers, scheduler, chunk_size, quiet, heavy_prob, n_balls, steps, image_size,
                   radius, speed, heavy_mass_ratio, heavy_radius_ratio):
    """Bouncing balls with two masses (heavy: 6x mass, 1.25x radius)."""
    from rnem_bench.generators.balls import Params

    params = Params(n_balls=parse_range(n_balls, int, "--n-balls"), steps=steps, image_size=image_size, radius=radius,
                    speed=speed, heavy_prob=heavy_prob, heavy_mass_ratio=heavy_mass_ratio,
                    heavy_radius_ratio=heavy_radius_ratio)
    recipe = custom_recipe("balls", params, n_seq, seed, chunk_size)
    run_generation(recipe, out, f"balls-{recipe.fingerprint()}", workers, scheduler, quiet)


@generate.command("curtain")
@generation_options
@click.option("--curtain-size", default="0.3-0.5", show_default=True, help="Curtain side as a fraction of the image, MIN-MAX.")
@_ball_options("3")
def generate_curtain(n_seq, out, seed, workers, scheduler, chunk_size, quiet, curtain_size, n_balls, steps, image_size,
                     radius, speed, heavy_mass_ratio, heavy_radius_ratio):
    """Equal-mass balls and an invisible curtain at a random place per sequence."""
    from rnem_bench.generators.curtain import Params

    lo, hi = parse_range(curtain_size, float, "--curtain-size")
    params = Params(n_balls=parse_range(n_balls, int, "--n-balls"), steps=steps, image_size=image_size, radius=radius,
                    speed=speed, heavy_mass_ratio=heavy_mass_ratio, heavy_radius_ratio=heavy_radius_ratio,
                    curtain_min=lo, curtain_max=hi)
    recipe = custom_recipe("curtain", params, n_seq, seed, chunk_size)
    run_generation(recipe, out, f"curtain-{recipe.fingerprint()}", workers, scheduler, quiet)


# --------------------------------------------------------------------------------- info, verify
def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@click.command()
@click.argument("dataset")
def info(dataset):
    """Recipe, counts, fingerprint, completeness and sizes of DATASET (a path or a task name)."""
    from rich.console import Console
    from rich.table import Table

    from rnem_bench.data.store import done_flags, open_dataset, resolve_dataset_path
    from rnem_bench.tasks import canonical_tasks

    ds = open_dataset(resolve_dataset_path(dataset), require_complete=False)
    recipe = ds.recipe
    console = Console()
    matches = canonical_tasks(recipe)
    console.print(f"[bold]{ds.path}[/bold]")
    console.print(f"generator: {recipe.generator}   seed: {recipe.seed}   format: {ds.attrs.get('format_version')}   "
                  f"rnem-bench {ds.attrs.get('package_version')}")
    console.print(f"fingerprint: {ds.fingerprint}   canonical task: {', '.join(matches) or 'none (custom recipe)'}")
    done = {s: int(done_flags(ds.root, s).sum()) for s in ds.counts}
    total = {s: -(-n // recipe.chunk_size) for s, n in ds.counts.items()}
    state = "complete" if ds.complete else "INCOMPLETE (" + ", ".join(f"{s} {done[s]}/{total[s]} chunks" for s in ds.counts) + ")"
    console.print(f"status: {state}")
    console.print("params: " + ", ".join(f"{k}={v}" for k, v in recipe.params.items()))
    table = Table("split", "array", "shape", "dtype", "stored", "ratio")
    for split in ds.counts:
        for name in ds.arrays:
            arr = ds.root[split][name]
            stored = _dir_size(ds.path / split / name)
            ratio = arr.nbytes / stored if stored else float("nan")
            table.add_row(split, name, str(arr.shape), str(arr.dtype), f"{stored / 2**20:.2f} MiB", f"{ratio:.1f}x")
    console.print(table)
    console.print(f"total on disk: {_dir_size(ds.path) / 2**20:.1f} MiB")


@click.command()
@click.argument("dataset")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(dataset, quiet):
    """Check DATASET's schema, completeness, value ranges and checksums; exit 2 on the first problem."""
    from rnem_bench.data.store import resolve_dataset_path
    from rnem_bench.data.verify import verify_dataset

    report = verify_dataset(resolve_dataset_path(dataset), progress=not quiet)
    click.echo(report)


# ------------------------------------------------------------------------------------- show
@click.command()
@click.argument("target")
@click.option("--index", type=int, default=0, show_default=True, help="Sequence index.")
@click.option("--split", default=None, help="Split to read (datasets only; default: test, else the first).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output .png or .gif.")
def show(target, index, split, out):
    """Render a sequence of a dataset (objects coloured by `groups`), or a run's figures (RUNDIR)."""
    path = Path(target)
    if path.is_dir() and (path / "config.json").exists():
        from rnem_bench.evaluation.figures import show_run

        out = out or path / f"figure2_{index}.png"
        for written in show_run(path, index, out) or [out]:
            click.echo(f"wrote {written}")
        click.echo(grouping_line(path))
        return
    from rnem_bench.data.render import save_sequence
    from rnem_bench.data.store import open_dataset, resolve_dataset_path

    ds = open_dataset(resolve_dataset_path(target))
    if split is None:
        split = "test" if "test" in ds.counts else next(iter(ds.counts))
    elif split not in ds.counts:
        raise RnemBenchError(f"--split {split}: {ds.path} has the splits {', '.join(ds.counts)}")
    out = out or Path(f"{ds.path.stem}_{split}_{index}.png")
    save_sequence(ds, split, index, out)
    click.echo(f"wrote {out}")


def grouping_line(rundir: Path) -> str:
    """One line: the last validation's grouping (ARI and the late steps' merge / split diagnostics)."""
    from rnem_bench.io import read_jsonl

    log = read_jsonl(rundir / "log.jsonl")
    if not log or "valid_ari_mean" not in log[-1]:
        return "no validation grouping logged (K=1, no groups, or no epoch finished)"
    e = log[-1]
    parts = [f"ARI {e['valid_ari_mean']:.3f} (last step {e['valid_ari_last']:.3f})"]
    for key, label in (("valid_merge_rate", "merge rate"), ("valid_merge_rate_apart", "apart"), ("valid_split_rate", "split rate"),
                       ("valid_pair_precision", "pair precision"), ("valid_pair_recall", "recall")):
        if key in e:
            parts.append(f"{label} {e[key]:.3f}")
    return f"validation after epoch {e['epoch']}: " + ", ".join(parts)


def __getattr__(name: str):
    if name == "resolve_dataset_path":  # its old home (it now lives with open_dataset)
        from rnem_bench.data.store import resolve_dataset_path

        return resolve_dataset_path
    raise AttributeError(f"module 'rnem_bench.data.commands' has no attribute '{name}'")
