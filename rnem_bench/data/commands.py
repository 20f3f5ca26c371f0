"""CLI commands about datasets: ``generate``, ``info``, ``verify``, ``show`` and the ``demo``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.paths import data_dir, task_dataset_path
from rnem_bench.recipes import Recipe, parse_splits


# ------------------------------------------------------------------------------------ helpers
def parse_range(text: str, kind: type = int, name: str = "range") -> tuple[Any, Any]:
    """``"6-8"`` -> (6, 8); ``"4"`` -> (4, 4). Refuses inverted or malformed ranges."""
    parts = str(text).split("-")
    try:
        lo, hi = (kind(parts[0]), kind(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None:
        raise RnemBenchError(f"{name} '{text}' is not a number or a range like 6-8")
    if hi < lo:
        raise RnemBenchError(f"{name} '{text}' is inverted: the minimum {lo} exceeds the maximum {hi}")
    return lo, hi


def resolve_dataset_path(name_or_path: str) -> Path:
    """A path to a dataset, or a task name whose canonical dataset lives in the data dir."""
    from rnem_bench.tasks import TASKS

    path = Path(name_or_path)
    if path.exists():
        return path
    if name_or_path in TASKS:
        canonical = task_dataset_path(name_or_path)
        if canonical.exists():
            return canonical
        raise RnemBenchError(
            f"task '{name_or_path}' has no dataset in {data_dir()} yet; run `rnem-bench generate --task {name_or_path}`"
        )
    raise RnemBenchError(f"dataset not found: {name_or_path} (neither a path nor a task name)")


def generation_options(f):
    """Options every generator shares."""
    options = [
        click.option("--n-seq", default=None, help="TRAIN/VALID/TEST sequence counts, e.g. 50000/10000/10000."),
        click.option("--out", type=click.Path(path_type=Path), default=None, help="Output .zarr directory."),
        click.option("--seed", type=int, default=None, help="Master seed (default: the task's, else 0)."),
        click.option("--workers", type=int, default=None, help="Local worker processes (default: all cores)."),
        click.option("--scheduler", default=None, help="Dask scheduler address: run the chunk tasks on that cluster."),
        click.option("--chunk-size", type=int, default=64, show_default=True, help="Sequences per Zarr chunk."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def run_generation(recipe: Recipe, out: Path | None, default_name: str, workers, scheduler, quiet: bool) -> Path:
    from rnem_bench.data.generate import generate_dataset

    if workers is not None and workers < 1:
        raise RnemBenchError(f"--workers must be >= 1, got {workers}")
    out = out or data_dir() / f"{default_name}.zarr"
    out.parent.mkdir(parents=True, exist_ok=True)
    path = generate_dataset(recipe, out, workers=workers, scheduler=scheduler, progress=not quiet)
    click.echo(f"complete: {path}  (fingerprint {recipe.fingerprint()})")
    return path


def custom_recipe(generator: str, params: Any, n_seq, seed, chunk_size) -> Recipe:
    params.validate()
    splits = parse_splits(n_seq) if n_seq else {"train": 50_000, "valid": 10_000, "test": 10_000}
    return Recipe(generator, asdict(params), seed=0 if seed is None else seed, splits=splits, chunk_size=chunk_size)


# ----------------------------------------------------------------------------------- generate
@click.group(invoke_without_command=True)
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


class _LazyCommand(click.Command):
    """`generate invaders` lives with the ALE code; import it (and ale-py) only when used."""

    def __init__(self, name: str, target: str):
        super().__init__(name, help="Space Invaders rollouts recorded from ALE (needs rnem-bench[atari]).")
        self.target = target

    def _real(self) -> click.Command:
        import importlib

        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)

    def main(self, *args, **kwargs):  # pragma: no cover - not used by groups
        return self._real().main(*args, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        return self._real().invoke(ctx)

    def get_help(self, ctx):
        return self._real().get_help(ctx)


generate.add_command(_LazyCommand("invaders", "rnem_bench.dqn.commands:generate_invaders"))


# --------------------------------------------------------------------------------- info, verify
def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@click.command()
@click.argument("dataset")
def info(dataset):
    """Recipe, counts, fingerprint, completeness and sizes of DATASET (a path or a task name)."""
    from rich.console import Console
    from rich.table import Table

    from rnem_bench.data.store import done_flags, open_dataset
    from rnem_bench.tasks import TASKS

    ds = open_dataset(resolve_dataset_path(dataset), require_complete=False)
    recipe = ds.recipe
    console = Console()
    matches = [t.name for t in TASKS.values() if t.generator == recipe.generator and _safe_fingerprint(t) == ds.fingerprint]
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


def _safe_fingerprint(task) -> str | None:
    try:
        return task.recipe().fingerprint()
    except RnemBenchError:
        return None


@click.command()
@click.argument("dataset")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def verify(dataset, quiet):
    """Check DATASET's schema, completeness, value ranges and checksums; exit 2 on the first problem."""
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
        return
    from rnem_bench.data.render import save_sequence
    from rnem_bench.data.store import open_dataset

    ds = open_dataset(resolve_dataset_path(target))
    if split is None:
        split = "test" if "test" in ds.counts else next(iter(ds.counts))
    elif split not in ds.counts:
        raise RnemBenchError(f"--split {split}: {ds.path} has the splits {', '.join(ds.counts)}")
    out = out or Path(f"{ds.path.stem}_{split}_{index}.png")
    save_sequence(ds, split, index, out)
    click.echo(f"wrote {out}")


# ------------------------------------------------------------------------------------- demo
@click.command()
@click.option("--n-seq", default="256/64/64", show_default=True, help="Sizes of the small demo dataset.")
@click.option("--train/--no-train", default=True, show_default=True, help="Also train, evaluate and draw a quick R-NEM.")
def demo(n_seq, train):
    """The README's main job: a small balls4 dataset (generated, described, verified, drawn), a
    quick R-NEM run on it (the pipeline end to end, too short to learn), then the trained mini-tier
    R-NEM shipped with the package on fresh mini-balls4 sequences. Reruns reuse what is there."""
    from rnem_bench.tasks import get_task

    ctx = click.get_current_context()
    task = get_task("balls4")
    recipe = task.recipe(splits=parse_splits(n_seq))
    out = data_dir() / f"balls4-demo-{recipe.fingerprint()}.zarr"
    click.echo(f"== generate: {n_seq} sequences with the balls4 physics -> {out}")
    path = run_generation(recipe, out, "unused", None, None, False)
    click.echo("== info")
    ctx.invoke(info, dataset=str(path))
    click.echo("== verify")
    ctx.invoke(verify, dataset=str(path), quiet=True)
    click.echo("== show")
    ctx.invoke(show, target=str(path), index=0, split="test", out=data_dir() / "demo_sequence.png")
    if train:
        _demo_train(ctx, path)
    _demo_pretrained()


def _demo_train(ctx: click.Context, path: Path) -> None:
    """Quick R-NEM on the demo data: train (or finish training), evaluate on 32 test sequences, draw."""
    from rnem_bench.cli import cli
    from rnem_bench.training.checkpoint import LAST

    rundir = data_dir() / "runs" / f"demo-rnem-{path.stem}"
    click.echo(f"== run rnem --preset quick -> {rundir}")
    ctx.invoke(cli.get_command(ctx, "run"), model="rnem", dataset=str(path), preset="quick", out=rundir,
               resume=(rundir / LAST).exists(), device="cpu")
    click.echo("== evaluate (first 32 test sequences; a CPU runs R-NEM slowly)")
    ctx.invoke(cli.get_command(ctx, "evaluate"), rundir=rundir, dataset=str(path), limit=32, batch_size=32)
    click.echo("== show (figure 2 of the paper for test sequence 0, rollout GIF, training curves)")
    ctx.invoke(show, target=str(rundir), index=0, out=rundir / "figure2.png")


def _demo_pretrained() -> None:
    """The shipped mini-balls4 R-NEM (rnem_bench/pretrained) on 64 freshly generated mini-balls4
    test sequences: its scores, the paper's figure 2 and the rollout GIF."""
    from rnem_bench.data.store import open_dataset
    from rnem_bench.evaluation.evaluator import grid_ari_baselines
    from rnem_bench.evaluation.figures import show_run
    from rnem_bench.evaluation.run import evaluate_run
    from rnem_bench.pretrained import PRETRAINED, pretrained_dir
    from rnem_bench.tasks import get_task

    name = "mini-balls4-rnem-k5"
    rundir = pretrained_dir(name)
    task = get_task(PRETRAINED[name].task)
    recipe = task.recipe(splits={"test": 64})
    out = data_dir() / f"{task.name}-demo-{recipe.fingerprint()}.zarr"
    click.echo(f"== trained model: {name} ({PRETRAINED[name].description}) on 64 fresh {task.name} sequences")
    path = run_generation(recipe, out, "unused", 1, None, True)
    result = evaluate_run(rundir, task=task.name, dataset=path)
    m = result["metrics"]
    click.echo(f"ARI {m['ari_mean']:.3f} (last step {m['ari_last']:.3f}), BCE / copy {m['relative_bce_last']:.3f}, "
               f"relational BCE / copy {m['relative_relational_bce_last']:.3f}")
    grids = grid_ari_baselines(open_dataset(path))
    click.echo("the same sequences cut by fixed grids, which know nothing of objects: ARI "
               + ", ".join(f"{name} {value:.3f}" for name, value in grids.items()))
    for written in show_run(rundir, 0, data_dir() / "trained" / "figure2.png", dataset=path):
        click.echo(f"wrote {written}")
