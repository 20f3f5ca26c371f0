"""Where canonical datasets and runs live on disk."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    """Root of canonical datasets: ``$RNEM_BENCH_DATA`` or the user cache dir."""
    env = os.environ.get("RNEM_BENCH_DATA")
    root = Path(env) if env else Path(platformdirs.user_cache_dir("rnem-bench")) / "data"
    return root.expanduser()


def task_dataset_path(task: str) -> Path:
    """Path of a task's canonical dataset (e.g. ``balls4`` -> ``<data_dir>/balls4.zarr``)."""
    return data_dir() / f"{task}.zarr"
