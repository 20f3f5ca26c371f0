"""Run directories and their files, all written atomically (temp file + ``os.replace``).

A run dir holds::

    config.json    the resolved RunConfig
    log.jsonl      one JSON object per finished epoch (rewritten from last.pt's history)
    last.pt        everything needed to resume: weights, optimizer, epoch, early-stopping state,
                   RNG states, history, optimiser updates; saved at each epoch's end, and by a
                   run stopped with Ctrl-C / SIGTERM also mid-epoch ("mid_epoch": batches done,
                   their loss sums, the noise generator's state)
    best.pt        the weights with the lowest validation loss so far
    probes.jsonl   with ``probe_every``: one JSON object per probe (validation on a subset every
                   ``probe_every`` updates: loss, ARI, merge / split rates), for fine learning curves
    summary.json   written when training stops: why ("stop_reason": max_epochs, early_stopping,
                   time_limit or signal), epochs, updates, best epoch, wall time

Checkpoints are read with ``torch.load(weights_only=True)``: never unpickle arbitrary objects
(``rnem_bench.io``, re-exported here: ``atomic_write_text``, ``atomic_torch_save``, ``read_checkpoint``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rnem_bench.errors import RnemBenchError
from rnem_bench.io import atomic_torch_save, atomic_write_text, read_checkpoint, read_jsonl
from rnem_bench.training.config import RunConfig

__all__ = ["CONFIG", "LOG", "PROBES", "LAST", "BEST", "SUMMARY", "atomic_torch_save", "atomic_write_text", "read_checkpoint",
           "write_log", "read_log", "read_summary", "load_run"]

CONFIG, LOG, LAST, BEST, SUMMARY = "config.json", "log.jsonl", "last.pt", "best.pt", "summary.json"
PROBES = "probes.jsonl"


def write_log(rundir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(rundir) / LOG, "".join(json.dumps(row) + "\n" for row in history))


def read_log(rundir: Path) -> list[dict[str, Any]]:
    """The run's log.jsonl: one dict per finished epoch ([] before the first)."""
    return read_jsonl(Path(rundir) / LOG)


def read_summary(rundir: Path) -> dict[str, Any] | None:
    path = Path(rundir) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else None


def load_run(rundir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> tuple[torch.nn.Module, RunConfig]:
    """The trained model of a run dir (``which``: "best" or "last"), in eval mode, and its config."""
    from rnem_bench.models import build_model

    rundir = Path(rundir)
    if which not in ("best", "last"):
        raise RnemBenchError(f"which must be 'best' or 'last', got '{which}'")
    if not rundir.is_dir():
        raise RnemBenchError(f"run dir not found: {rundir}")
    config = RunConfig.load(rundir / CONFIG)
    state = read_checkpoint(rundir / (BEST if which == "best" else LAST))
    model = build_model(config.model, config.image_size, init=config.init, **config.model_options)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError, IndexError, AttributeError) as err:  # foreign or malformed file
        raise RnemBenchError(f"{rundir}: checkpoint does not fit model '{config.model}': {str(err).splitlines()[0][:200]}") from None
    return model.to(device).eval(), config
