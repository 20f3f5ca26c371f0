"""``rnem-bench verify``: schema, completeness, value ranges and recomputed checksums of a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from rnem_bench.data.store import READ_ERRORS, Dataset, chunk_crc32, chunk_tasks, open_dataset
from rnem_bench.dataset_format import ARRAYS, CRC_ARRAY, DONE_ARRAY, OVERLAP
from rnem_bench.errors import RnemBenchError


def _fail(ds: Dataset, msg: str) -> None:
    raise RnemBenchError(f"{ds.path}: {msg}")


def check_schema(ds: Dataset) -> None:
    """Every array of the generator's layout is present with the right shape and dtype."""
    from rnem_bench.data.generate import resolve_params
    from rnem_bench.generators import get_generator

    recipe = ds.recipe
    if ds.fingerprint != recipe.fingerprint():
        _fail(ds, f"fingerprint {ds.fingerprint} does not match its recipe ({recipe.fingerprint()})")
    layout = get_generator(recipe.generator).layout(resolve_params(recipe))
    if sorted(layout) != sorted(ds.arrays):
        _fail(ds, f"arrays {sorted(ds.arrays)} differ from the generator's layout {sorted(layout)}")
    for split, n in recipe.splits.items():
        if split not in ds.root:
            _fail(ds, f"split '{split}' is missing")
        for name, shape in layout.items():
            if name not in ds.root[split]:
                _fail(ds, f"array {split}/{name} is missing")
            arr = ds.root[split][name]
            if arr.shape != (n, *shape):
                _fail(ds, f"{split}/{name} has shape {arr.shape}, expected {(n, *shape)}")
            if arr.dtype != ARRAYS[name].dtype:
                _fail(ds, f"{split}/{name} has dtype {arr.dtype}, expected {ARRAYS[name].dtype}")


def check_values(ds: Dataset, where: str, a: dict[str, np.ndarray]) -> None:
    """Value ranges and the relations between arrays, for one chunk."""
    for name in ("features", "collisions", "curtain"):
        if name in a and a[name].max(initial=0) > 1:
            _fail(ds, f"{where}: {name} holds values other than 0/1")
    if "actions" in a:
        n_actions = int(ds.attrs.get("n_actions", 0))
        if a["actions"].min(initial=0) < 0 or (n_actions and a["actions"].max(initial=0) >= n_actions):
            _fail(ds, f"{where}: actions outside 0..{n_actions - 1}")
    if "groups" not in a:
        return
    groups, n_obj = a["groups"], a["n_objects"].astype(np.int64)
    labels = np.where(groups == OVERLAP, 0, groups).reshape(len(groups), -1).max(axis=1)
    if np.any(labels > n_obj):
        _fail(ds, f"{where}: groups names an object id above n_objects")
    occupied = groups > 0
    if np.any(a["features"].astype(bool) & ~occupied):
        _fail(ds, f"{where}: features has pixels that belong to no object in groups")
    if "curtain" not in a and np.any(a["features"].astype(bool) != occupied):
        _fail(ds, f"{where}: features differs from the union of objects in groups")
    if "curtain" in a and np.any(a["features"].astype(bool) & a["curtain"][:, None].astype(bool)):
        _fail(ds, f"{where}: features shows pixels behind the curtain")
    if np.any(a["collisions"].astype(bool) & ~occupied):
        _fail(ds, f"{where}: collisions marks pixels outside every object")
    present = np.arange(a["radii"].shape[1])[None, :] < n_obj[:, None]
    if np.any(np.isnan(a["radii"]) == present) or np.any(np.isnan(a["positions"]).any(axis=(1, 3)) == present):
        _fail(ds, f"{where}: states are NaN exactly where objects are absent, and finite where present")
    size = a["features"].shape[-1]
    pos, r = a["positions"], a["radii"][:, None, :, None]
    tol = 1e-3
    if np.any((pos < r - tol) | (pos > size - r + tol)):
        _fail(ds, f"{where}: a ball leaves the image window")


def verify_dataset(path: str | Path, progress: bool = True) -> str:
    """Raise RnemBenchError on the first problem; return a one-line summary when all is well."""
    ds = open_dataset(path, require_complete=False)
    if not ds.complete:
        _fail(ds, "incomplete (not marked complete); rerun the generate command to finish it")
    check_schema(ds)
    tasks = chunk_tasks(ds.recipe)
    names = ds.arrays
    for task in tqdm(tasks, desc="verify", unit="chunk", disable=not progress):
        group = ds.root[task.split]
        where = f"{task.split} sequences {task.start}:{task.stop}"
        try:
            done, crc = group[DONE_ARRAY][task.index], group[CRC_ARRAY][task.index]
            arrays = {name: group[name][task.start : task.stop] for name in names}
        except READ_ERRORS as err:  # codec errors of damaged files
            _fail(ds, f"{where}: unreadable chunk ({type(err).__name__}); delete the dataset and generate it again")
        if not done:
            _fail(ds, f"{where}: chunk never finished writing")
        if not np.array_equal(chunk_crc32(arrays, names), crc):
            _fail(ds, f"{where}: checksum mismatch (data changed or corrupted after writing)")
        check_values(ds, where, arrays)
    n = sum(ds.counts.values())
    return f"OK {ds.path}: {n} sequences in {len(tasks)} chunks, schema, values and checksums verified"
