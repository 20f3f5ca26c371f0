"""Datasets: the Zarr store, generation and the batch loader.

The public names (what a model from outside needs to read a task's data) are imported on first use:
``open_dataset`` (a path or an open store -> ``Dataset``), ``resolve_dataset_path`` (a task name ->
its canonical dataset, or a path), ``Dataset`` and ``SequenceLoader`` (batches of sequences).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Dataset": "rnem_bench.data.store",
    "open_dataset": "rnem_bench.data.store",
    "resolve_dataset_path": "rnem_bench.data.store",
    "SequenceLoader": "rnem_bench.data.loader",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnem_bench.data' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
