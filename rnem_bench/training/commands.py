"""``rnem-bench run MODEL --dataset TASK|PATH``: train a reference model (see ``harness.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from tqdm import tqdm

from rnem_bench.errors import RnemBenchError
from rnem_bench.signals import Interrupted, resume_command
from rnem_bench.training.config import PRESETS


@click.command()
@click.argument("model")
@click.option("--dataset", required=True, help="Task name (its dataset is generated if missing) or path of a .zarr dataset.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="paper", show_default=True,
              help="paper: the paper's sizes; quick: small data and few epochs (minutes on a CPU).")
@click.option("--k", type=int, default=None, help="Components K (default: the task's; 1 for rnn/lstm).")
@click.option("--noise", type=float, default=None, help="Bit-flip probability (default: 0.2; 0.02 for invaders).")
@click.option("--epochs", type=int, default=None, help="Maximum epochs (default: 500; quick: 3).")
@click.option("--batch-size", type=int, default=None, help="Sequences per batch and process (default: 64; quick: 32).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--patience", type=int, default=None, help="Early stopping: epochs without a better validation loss (default 10).")
@click.option("--steps", type=int, default=None, help="Model steps per sequence (default: all; quick: 12).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--bf16/--no-bf16", default=None, help="bf16 autocast (default: on with CPUs that do bf16 natively, AVX512_BF16/AMX; off on CUDA, where the fast path measured slower on an H200).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the EM step (default: off; it measured slower on CPU and, with bf16, on an H200).")
@click.option("--reference-decoder/--phase-decoder", default=None, help="Resize-then-convolve decoder, or its exact x2 phase form (default: phase on CPU, where it is ~1.9x faster; resize on CUDA).")
@click.option("--cuda-graph/--no-cuda-graph", default=False, show_default=True,
              help="Capture each update as a CUDA graph and replay it (one process on CUDA; same maths and noise). "
                   "Off by default until it is timed on a GPU (benchmarks/gpu_check.sh).")
@click.option("--init", type=click.Choice(["original", "pytorch"]), default="original", show_default=True,
              help="Parameter init: the original code's (glorot-uniform weights, zero biases) or PyTorch's defaults.")
@click.option("--n-actions", type=int, default=None, help="Action count for datasets with actions (default: the dataset's, else 6).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run dir (default: a new runs/MODEL-TASK-kK-seedS[-PRESET][-N]).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--max-minutes", type=float, default=None, help="Stop resumably between epochs once the next epoch would pass this wall time.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--hidden", type=int, default=None, help="Theta's size, the recurrent state (default: the paper's 250).")
@click.option("--probe-every", type=int, default=0, show_default=True,
              help="Also validate every N updates on --probe-limit validation sequences (probes.jsonl: loss, ARI, merge / split rates); 0: off.")
@click.option("--probe-limit", type=int, default=256, show_default=True, help="Validation sequences a probe scores.")
def run(model, dataset, preset, k, noise, epochs, batch_size, lr, patience, steps, seed, device, bf16,
        compile_, reference_decoder, cuda_graph, init, n_actions, out, resume, max_minutes, quiet,
        hidden, probe_every, probe_limit):
    """Train MODEL (rnem, rnem-noatt, rnn-em, rnn, lstm) on a task or dataset.

    \b
    rnem-bench run rnem --dataset balls4 --preset quick     # a few minutes on a CPU
    rnem-bench run rnem --dataset balls4                    # the paper's run (GPU)
    rnem-bench run rnem --dataset balls4 --out runs/a --resume
    torchrun --standalone --nproc_per_node 4 --no-python rnem-bench run rnem --dataset balls4 --batch-size 16

    Ctrl-C or SIGTERM stops after the update in flight and saves a checkpoint that --resume
    continues exactly (exit status 130 / 143).
    """
    from rnem_bench.training.harness import train
    from rnem_bench.training.resolve import default_rundir, make_config

    config = make_config(
        model, dataset, preset, k=k, noise=noise, epochs=epochs, batch_size=batch_size, lr=lr,
        patience=patience, seed=seed, steps=steps, device=device, bf16=bf16, compile=compile_,
        n_actions=n_actions, progress=not quiet, reference_decoder=reference_decoder, init=init,
        cuda_graph=cuda_graph, hidden=hidden, probe_every=probe_every, probe_limit=probe_limit,
    )
    if resume and out is None:
        raise RnemBenchError("--resume needs --out RUNDIR: the run to continue")
    rundir = out or default_rundir(config)
    click.echo(f"run {config.model} on {config.task or config.dataset}: K={config.k} noise={config.noise} "
               f"steps={config.steps} batch={config.batch_size} epochs<={config.epochs} device={config.device}"
               f"{' bf16' if config.bf16 else ' fp32'}{' compiled' if config.compile else ''}"
               f"{' cuda-graph' if config.cuda_graph else ''}"
               f"{' reference-decoder' if config.reference_decoder else ''} -> {rundir}")
    if cuda_graph and not config.cuda_graph:
        processes = f", {config.world_size} processes" if config.world_size > 1 else ""
        click.echo(f"note: --cuda-graph applies to one process on CUDA; this run ({config.device}{processes}) stays eager")
    if bf16 is None and not config.bf16 and not config.device.startswith("cuda"):
        click.echo(f"note: fp32, because {config.device} does not do bf16 natively (bf16 autocast would be emulated, slower)")
    try:
        summary = train(config, rundir, resume=resume, progress=not quiet,
                        time_limit=None if max_minutes is None else 60 * max_minutes,
                        on_cost=None if quiet else cost_reporter(config))
    except Interrupted as stop:  # Ctrl-C or SIGTERM: last.pt is saved; exit 130 / 143
        if int(os.environ.get("RANK", 0)) == 0:  # under torchrun: one line, not one per process
            launcher = " (under torchrun, as before)" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""
            click.echo(f"{stop}; resume with: {resume_command(click.get_current_context(), rundir)}{launcher}", err=True)
        raise
    click.echo(f"{summary['stop_reason']}: {summary['epochs']} epochs ({summary['updates']} updates), best valid loss "
               f"{summary['best_valid_loss']:.3f} at epoch {summary['best_epoch']} ({rundir})")


def cost_reporter(config):
    """A callback for ``train(on_cost=...)`` that prints one line with what a paper-tier run costs
    on a CPU, and the CPU tier's task of the same family; None where there is nothing to warn of."""
    from rnem_bench.tasks import TASKS

    task = TASKS.get(config.task or "")
    if config.device != "cpu" or task is None or task.tier != "paper":
        return None
    mini = TASKS.get(f"mini-{task.name}")

    def report(cost) -> None:
        hint = (f"; on a CPU, the CPU tier's --dataset {mini.name} trains in tens of minutes" if mini is not None
                else "; this task has no CPU-tier version: it needs a GPU")
        tqdm.write(f"cost: {cost.seconds_per_update:.2f} s per update here -> {cost.epoch_seconds / 60:.0f} min per epoch "
                   f"({cost.updates_per_epoch} updates), up to {cost.worst_case_seconds / 3600:.0f} h for {cost.epochs} "
                   f"epochs{hint} (--quiet hides this line)")

    return report


if __name__ == "__main__":  # `torchrun -m rnem_bench.training.commands MODEL ...` also works
    from rnem_bench.cli_tools import run_command

    run_command(run, prog_name="rnem-bench run")
