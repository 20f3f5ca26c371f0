"""Dataset generators, importable as ``rnem_bench.generators`` (folder ``generators/``).

A generator is one module that defines:

- ``Params``: a frozen dataclass of its parameters, with defaults, and ``validate()`` raising
  ``RnemBenchError`` with a one-line message on impossible values;
- ``layout(params) -> dict[str, tuple]``: array name -> per-sequence shape (schema names only);
- ``make_chunk(params, seed, split, start, stop, out=None) -> dict[str, np.ndarray]``: sequences
  ``start:stop`` of ``split``. Pure: the same arguments give the same bytes, in any process.
  ``out`` (from ``empty_chunk``) is filled in place and returned instead of new arrays: a worker
  reuses its buffers across chunks, because touching fresh pages costs as much as simulating;
- optionally ``attrs(params) -> dict``: extra root attributes (e.g. ``{"has_groups": False}``).

Add a generator with one file here and one line in ``GENERATORS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from rnem_bench.data.schema import ARRAYS
from rnem_bench.errors import RnemBenchError

GENERATORS: dict[str, str] = {
    "balls": "rnem_bench.generators.balls",
    "curtain": "rnem_bench.generators.curtain",
    "invaders": "rnem_bench.generators.invaders",
}


def get_generator(name: str) -> ModuleType:
    if name not in GENERATORS:
        raise RnemBenchError(f"unknown generator '{name}' (known: {', '.join(GENERATORS)})")
    try:
        return importlib.import_module(GENERATORS[name])
    except ImportError as err:
        raise RnemBenchError(f"generator '{name}' cannot be imported: {err}") from None


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
