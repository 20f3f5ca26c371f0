"""The predictions layout for models outside this repo, and ``score``.

A predictions store is a Zarr group (v2 or v3) whose root attributes follow
``rnem_bench/schemas/predictions-v1.json`` and which holds, for the task's test split in order:

    psi        (N, T, K, H, W)  float in [0, 1]   component predictions of frame t + 1  } mixture
    gamma      (N, T, K, H, W)  float in [0, 1]   assignments at step t (sum to 1 over K) } models
    prediction (N, T, H, W)     float in [0, 1]   or: one predicted frame t + 1 per step, alone or
                                                  with gamma (N, T, K, H, W), the masks the model
                                                  composed it with (sum to 1 over K): a slot model
    simulation (N, S, H, W)     float in [0, 1]   optional: frames sim_observe+1 .. sim_observe+S

Any framework can write it (``zarr`` in Python; ``write_predictions`` below is a convenience).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.protocol import SIM_OBSERVE
from rnem_bench.evaluation.results import check_schema, make_result

ARRAY_NAMES = ("psi", "gamma", "prediction", "simulation")


def write_predictions(path: str | Path, *, model: str, task: str, sim_observe: int = SIM_OBSERVE,
                      split: str | None = None, seeds: list[int] | None = None, parameters: int | None = None,
                      description: str | None = None, url: str | None = None,
                      training: dict[str, Any] | None = None, **arrays: np.ndarray) -> Path:
    """Write a predictions store from numpy arrays (names in ``ARRAY_NAMES``) and the layout's
    attributes (``split``, ``seeds``, ``parameters``, ``description``, ``url`` and ``training`` are
    optional; they travel into the result file ``score`` makes). ``training`` says how the model
    was trained (``task``, ``k``, ``batch_size``, ``updates``, ``wall_time_s``): the board notes a
    training task or K other than the scored one. The attributes are checked against the schema
    before anything is written."""
    unknown = set(arrays) - set(ARRAY_NAMES)
    if unknown:
        raise RnemBenchError(f"unknown prediction arrays: {sorted(unknown)} (expected {', '.join(ARRAY_NAMES)})")
    attrs: dict[str, Any] = {"rnem_bench_predictions": 1, "model": model, "task": task, "sim_observe": sim_observe}
    optional = {"split": split, "seeds": None if seeds is None else [int(x) for x in seeds], "parameters": parameters,
                "description": description, "url": url, "training": training}
    attrs.update({name: value for name, value in optional.items() if value is not None})
    check_schema(attrs, "predictions-v1", "predictions attributes")
    root = zarr.open_group(str(path), mode="w")
    for name, value in arrays.items():
        value = np.asarray(value, dtype=np.float16 if value.dtype == np.float16 else np.float32)
        root.create_array(name, data=value, chunks=(min(64, len(value)), *value.shape[1:]))
    root.attrs.update(attrs)
    return Path(path)


def open_predictions(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attrs, lazy arrays) of a predictions store, with its attributes validated."""
    path = Path(path)
    if not path.exists():
        raise RnemBenchError(f"predictions not found: {path}")
    try:
        root = zarr.open_group(str(path), mode="r")
    except Exception as err:  # zarr raises several types for foreign or broken stores
        raise RnemBenchError(f"{path} is not a readable Zarr group ({type(err).__name__})") from None
    attrs = dict(root.attrs)
    check_schema(attrs, "predictions-v1", f"{path} attributes")
    arrays = {name: root[name] for name in ARRAY_NAMES if name in root}
    if not arrays:
        raise RnemBenchError(f"{path} holds none of the arrays {', '.join(ARRAY_NAMES)}")
    for name, arr in arrays.items():
        if not isinstance(arr, zarr.Array):
            raise RnemBenchError(f"{path}: '{name}' must be an array, found a {type(arr).__name__}")
        if arr.dtype.kind not in "fub":
            raise RnemBenchError(f"{path}: '{name}' must hold probabilities (float), got dtype {arr.dtype}")
    return attrs, arrays


def score_predictions(path: str | Path, task: str, dataset: str | Path | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Score a predictions store on ``task``'s test split (or ``dataset``) and return a result object."""
    t0 = time.perf_counter()
    attrs, arrays = open_predictions(path)
    if attrs["task"] != task:
        raise RnemBenchError(f"predictions were made for task '{attrs['task']}', not '{task}'")
    evaluator = Evaluator(dataset if dataset is not None else task,
                          EvalConfig(split=attrs.get("split", "test"), batch_size=batch_size,
                                     sim_observe=int(attrs.get("sim_observe", SIM_OBSERVE))))
    metrics = evaluator.eval(arrays)
    k = next((arrays[name].shape[2] for name in ("psi", "gamma") if name in arrays), 1)
    return make_result(
        metrics, task=task, ds=evaluator.ds, split=evaluator.config.split, model=attrs["model"], k=k,
        seeds=list(attrs.get("seeds", [0])), wall_time_s=time.perf_counter() - t0,
        parameters=attrs.get("parameters"), source="external", description=attrs.get("description"),
        url=attrs.get("url"), training=attrs.get("training"),
    )
