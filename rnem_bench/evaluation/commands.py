"""CLI: ``rnem-bench evaluate RUNDIR`` (our models) and ``rnem-bench score PREDICTIONS`` (anyone's)."""

from __future__ import annotations

from pathlib import Path

import click

from rnem_bench.errors import RnemBenchError


def _echo_summary(result: dict, path: Path) -> None:
    m = result["metrics"]

    def fmt(v):
        return "n/a" if v is None else f"{v:.4g}"

    click.echo(f"task {result['task']}  model {result['model']['name']} (K={result['model']['k']})  "
               f"{m['n_sequences']} sequences")
    click.echo(f"  BCE last {fmt(m['bce_last'])} (relative {fmt(m['relative_bce_last'])})   "
               f"relational BCE last {fmt(m.get('relational_bce_last'))} (relative {fmt(m.get('relative_relational_bce_last'))})")
    click.echo(f"  ARI mean {fmt(m['ari_mean'])}  last {fmt(m['ari_last'])}")
    if m.get("simulation_bce"):
        click.echo("  simulation BCE per step: " + " ".join(f"{v:.1f}" for v in m["simulation_bce"]))
    click.echo(f"wrote {path}")


@click.command()
@click.argument("rundir", type=click.Path(path_type=Path))
@click.option("--task", default=None, help="Task to evaluate on (default: the run's); e.g. balls678 for extrapolation.")
@click.option("--dataset", default=None, help="Dataset path instead of the task's canonical dataset.")
@click.option("--k", type=int, default=None, help="Components at test time (default: the run's K on its own task, the task's on another: 8 on balls678).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N test sequences (not leaderboard-valid).")
@click.option("--device", default="cpu", show_default=True, help="Where the model and the metrics run (cpu, cuda, cuda:1).")
@click.option("--cuda-graph/--no-cuda-graph", default=False, show_default=True,
              help="On CUDA, replay each full batch's forward pass and rollout as a CUDA graph (same draws, same scores).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Result file (default RUNDIR/result-TASK.json).")
def evaluate(rundir, task, dataset, k, batch_size, limit, device, cuda_graph, out):
    """Score RUNDIR's best checkpoint on a test split and write a result file."""
    from rnem_bench.evaluation.results import write_result
    from rnem_bench.evaluation.run import evaluate_run

    if not (rundir / "config.json").exists():
        raise RnemBenchError(f"{rundir} is not a run directory (no config.json)")
    result = evaluate_run(rundir, task=task, k=k, dataset=dataset, batch_size=batch_size, limit=limit, device=device,
                          cuda_graph=cuda_graph)
    path = write_result(result, out or rundir / f"result-{result['task']}.json")
    _echo_summary(result, path)


@click.command()
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--task", required=True, help="Task the predictions were made on.")
@click.option("--dataset", default=None, help="Dataset path instead of the task's canonical dataset.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Result file (default PREDICTIONS.result.json).")
def score(predictions, task, dataset, out):
    """Score PREDICTIONS (a Zarr store in the documented layout) and write a result file."""
    from rnem_bench.evaluation.predictions import score_predictions
    from rnem_bench.evaluation.results import write_result

    result = score_predictions(predictions, task, dataset=dataset)
    path = write_result(result, out or predictions.with_name(predictions.name + ".result.json"))
    _echo_summary(result, path)
