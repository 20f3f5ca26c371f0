"""Dataset generators, importable as ``rnem_bench.generators`` (folder ``generators/``).

A generator is one module that defines:

- ``Params``: a frozen dataclass of its parameters, with defaults, and ``validate()`` raising
  ``RnemBenchError`` with a one-line message on impossible values;
- ``layout(params) -> dict[str, tuple]``: array name -> per-sequence shape (schema names only);
- ``make_chunk(params, seed, split, start, stop, out=None) -> dict[str, np.ndarray]``: sequences
  ``start:stop`` of ``split``. Pure: the same arguments give the same bytes, in any process.
  ``out`` (from ``chunks.empty_chunk``) is filled in place and returned instead of new arrays: a worker
  reuses its buffers across chunks, because touching fresh pages costs as much as simulating;
- optionally ``attrs(params) -> dict``: extra root attributes (e.g. ``{"has_groups": False}``).

Add a generator with one file here and one line in ``GENERATORS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rnem_bench.errors import RnemBenchError
from rnem_bench.generators.chunks import empty_chunk  # noqa: F401  (re-exported: generators import it from here before)

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
