"""Command-line pieces shared by the dataset commands (``generate``, ``info``...) and ``generate
invaders`` (in ``rnem_bench.dqn.commands``): option parsing, the options every generator takes,
and running a generation with its one-line report."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from rnem_bench.errors import RnemBenchError
from rnem_bench.paths import data_dir
from rnem_bench.recipes import Recipe, parse_splits


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
