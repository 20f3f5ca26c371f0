"""Recipes fix a dataset: generator, its parameters, seed, split sizes and format version.

A recipe hashes to a fingerprint stored in the dataset. The leaderboard accepts results only
on datasets whose fingerprint equals the task's canonical recipe (``rnem_bench.tasks``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rnem_bench.dataset_format import FORMAT_VERSION, SPLITS
from rnem_bench.errors import RnemBenchError


@dataclass(frozen=True)
class Recipe:
    generator: str                      # registry name: "balls", "curtain", "invaders"
    params: dict[str, Any]              # the generator's parameters, every default resolved
    seed: int = 0
    splits: dict[str, int] = field(default_factory=lambda: {"train": 50_000, "valid": 10_000, "test": 10_000})
    chunk_size: int = 64                # sequences per Zarr chunk (and per generation task)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name, n in self.splits.items():
            if name not in SPLITS:
                raise RnemBenchError(f"unknown split '{name}' (expected one of {', '.join(SPLITS)})")
            if not isinstance(n, int) or n < 0:
                raise RnemBenchError(f"split '{name}' size must be a non-negative integer, got {n!r}")
        if sum(self.splits.values()) == 0:
            raise RnemBenchError("a dataset needs at least one sequence")
        if self.chunk_size < 1:
            raise RnemBenchError(f"chunk_size must be >= 1, got {self.chunk_size}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # plain JSON types (tuples become lists)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        try:
            return cls(
                generator=d["generator"],
                params=dict(d["params"]),
                seed=int(d["seed"]),
                splits={k: int(v) for k, v in d["splits"].items()},
                chunk_size=int(d["chunk_size"]),
                format_version=int(d["format_version"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RnemBenchError(f"malformed recipe: {err!r}") from None

    def identity_params(self) -> dict[str, Any]:
        """The parameters as fingerprinted (the generator's ``fingerprint_params`` applied)."""
        from rnem_bench.generators import get_generator

        params = self.to_dict()["params"]
        hook = getattr(get_generator(self.generator), "fingerprint_params", None)
        return params if hook is None else hook(params)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the recipe (first 16 hex digits).

        A generator may define ``fingerprint_params(params) -> params`` to leave out what only
        says where something lies on this machine (the invaders policy file, pinned by its hash),
        so the same recipe has the same fingerprint everywhere.
        """
        identity = self.to_dict()
        identity["params"] = self.identity_params()
        blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_splits(text: str) -> dict[str, int]:
    """``"50000/10000/10000"`` -> train/valid/test sizes; ``"0/0/100"`` keeps only test."""
    parts = text.split("/")
    if len(parts) != 3:
        raise RnemBenchError(f"--n-seq expects TRAIN/VALID/TEST such as 50000/10000/10000, got '{text}'")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise RnemBenchError(f"--n-seq expects whole numbers, got '{text}'") from None
    if any(s < 0 for s in sizes) or sum(sizes) == 0:
        raise RnemBenchError(f"--n-seq sizes must be >= 0 and not all 0, got '{text}'")
    return {name: n for name, n in zip(SPLITS, sizes) if n > 0}
