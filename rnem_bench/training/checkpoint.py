"""Run directories and their files, all written atomically (temp file + ``os.replace``).

A run dir holds::

    config.json    the resolved RunConfig
    log.jsonl      one JSON object per finished epoch (rewritten from last.pt's history)
    last.pt        everything needed to resume: weights, optimizer, epoch, early-stopping state,
                   RNG states, history, optimiser updates; saved at each epoch's end, and by a
                   run stopped with Ctrl-C / SIGTERM also mid-epoch ("mid_epoch": batches done,
                   their loss sums, the noise generator's state)
    best.pt        the weights with the lowest validation loss so far
    summary.json   written when training stops: why ("stop_reason": max_epochs, early_stopping,
                   time_limit or signal), epochs, updates, best epoch, wall time

Checkpoints are read with ``torch.load(weights_only=True)``: never unpickle arbitrary objects.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from rnem_bench.errors import RnemBenchError
from rnem_bench.training.config import RunConfig

CONFIG, LOG, LAST, BEST, SUMMARY = "config.json", "log.jsonl", "last.pt", "best.pt", "summary.json"


def _umask_mode() -> int:
    """The mode open() gives a new file: mkstemp's 0600 would hide shipped policies from other users.

    Read once at import: os.umask can only be read by setting it, which would race other threads.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _umask_mode()


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_torch_save(path: Path, obj: Any) -> None:
    _atomic(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not Path(path).exists():
        raise RnemBenchError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign file: one line, not a traceback
        raise RnemBenchError(f"cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def write_log(rundir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(Path(rundir) / LOG, "".join(json.dumps(row) + "\n" for row in history))


def read_log(rundir: Path) -> list[dict[str, Any]]:
    path = Path(rundir) / LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
