"""Buffers a generator's ``make_chunk`` fills: the arrays of n sequences in the schema's dtypes."""

from __future__ import annotations

import numpy as np

from rnem_bench.dataset_format import ARRAYS
from rnem_bench.errors import RnemBenchError


def empty_chunk(layout: dict[str, tuple[int, ...]], n: int,
                out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Uninitialised arrays for ``n`` sequences of ``layout`` in the schema's dtypes, or ``out``
    when it is given (checked to match). ``make_chunk`` must write every element."""
    if out is None:
        return {name: np.empty((n, *shape), dtype=ARRAYS[name].dtype) for name, shape in layout.items()}
    for name, shape in layout.items():
        if name not in out or out[name].shape != (n, *shape) or out[name].dtype != ARRAYS[name].dtype:
            raise RnemBenchError(f"buffer '{name}' does not match the chunk layout {(n, *shape)} {ARRAYS[name].dtype}")
    return out
