"""The dataset format (docs/design.md, "Dataset format"): one Zarr v3 group per dataset.

Layout::

    <name>.zarr/                 root attrs: format_version, recipe, fingerprint, counts,
                                 arrays, has_groups, package_version, complete (written last)
      train/ valid/ test/        one group per split, every array chunked along sequences
        features   (N, T, H, W)  uint8 0/1   binary frames (what models see)
        groups     (N, T, H, W)  uint8       0 background, 1..n object id, 255 overlap
        collisions (N, T, H, W)  uint8 0/1   pixels of objects in a ball-ball collision at t
        ...                                  per-generator extras, see ARRAYS
        _chunk_done  (n_chunks,)          uint8   1 once every array of that chunk is written
        _chunk_crc32 (n_chunks, n_arrays) uint32  CRC32 of each array's bytes in that chunk

T counts stored frames: a recipe's ``steps`` model steps need ``steps + 1`` frames, because
step t is scored against frame t + 1 (next-step prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
OVERLAP = 255  # `groups` label of pixels covered by more than one object (ignored by ARI)

DONE_ARRAY = "_chunk_done"
CRC_ARRAY = "_chunk_crc32"


@dataclass(frozen=True)
class ArraySpec:
    """One per-split array: its per-sequence shape is given by the generator at write time."""

    name: str
    dtype: np.dtype
    description: str
    fill: float | int = 0


def _spec(name: str, dtype: str, description: str, fill: float | int = 0) -> ArraySpec:
    return ArraySpec(name, np.dtype(dtype), description, fill)


# Every array a generator may write. Which ones a dataset holds is in its root attrs `arrays`.
ARRAYS: dict[str, ArraySpec] = {
    s.name: s
    for s in [
        _spec("features", "uint8", "(N, T, H, W) binary frames, 0/1"),
        _spec("groups", "uint8", "(N, T, H, W) 0 background, 1..n object id, 255 overlap"),
        _spec("collisions", "uint8", "(N, T, H, W) 1 on pixels of balls colliding at t"),
        _spec("positions", "float32", "(N, T, n_max, 2) centre (x, y) in pixels, NaN if absent", np.nan),
        _spec("velocities", "float32", "(N, T, n_max, 2) pixels per frame, NaN if absent", np.nan),
        _spec("radii", "float32", "(N, n_max) radius in pixels, NaN if absent", np.nan),
        _spec("masses", "float32", "(N, n_max) mass (light ball = 1), NaN if absent", np.nan),
        _spec("n_objects", "uint8", "(N,) number of balls in the sequence"),
        _spec("curtain", "uint8", "(N, H, W) 1 where the invisible curtain hides objects"),
        _spec("actions", "int16", "(N, T) agent action taken after frame t (ALE only)"),
        _spec("episode", "int32", "(N,) episode id the sequence was cut from (ALE only)"),
        _spec("step_offset", "int32", "(N,) index of the first frame within its episode (ALE only)"),
    ]
}
