"""``rnem-bench demo``: the README's main job, a tour of the commands on small data (minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path

import click

from rnem_bench.data.cli_options import run_generation
from rnem_bench.data.commands import info, show, verify
from rnem_bench.paths import data_dir
from rnem_bench.recipes import parse_splits


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
    from rnem_bench.evaluation.commands import evaluate
    from rnem_bench.training.checkpoint import LAST
    from rnem_bench.training.commands import run

    rundir = data_dir() / "runs" / f"demo-rnem-{path.stem}"
    click.echo(f"== run rnem --preset quick -> {rundir}")
    ctx.invoke(run, model="rnem", dataset=str(path), preset="quick", out=rundir,
               resume=(rundir / LAST).exists(), device="cpu")
    click.echo("== evaluate (first 32 test sequences; a CPU runs R-NEM slowly)")
    ctx.invoke(evaluate, rundir=rundir, dataset=str(path), limit=32, batch_size=32)
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
