"""Fast shuffled minibatches from a dataset split, as torch tensors.

Reading one random sequence means decompressing its whole Zarr chunk, so a fully random index
per sequence would decompress ``chunk_size`` sequences to use one. Instead each epoch visits the
chunks in a random order, pools ``buffer_chunks`` of them, shuffles the pooled sequences and cuts
batches (the usual shuffle-buffer scheme). Every sequence is seen exactly once per epoch; a batch
mixes sequences from ``buffer_chunks`` random chunks. Chunks are read by a small thread pool
ahead of use (Blosc decoding releases the GIL), so the training loop rarely waits.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import torch

from rnem_bench.data.store import Dataset
from rnem_bench.errors import RnemBenchError


class SequenceLoader:
    """Iterate over ``split`` in minibatches: ``{name: tensor (B, ...)}`` with the stored dtypes.

    Deterministic for a given ``seed`` and epoch (``set_epoch``), like a DistributedSampler;
    ``rank``/``world_size`` give each DDP process a disjoint share of the chunks.
    """

    def __init__(
        self,
        ds: Dataset,
        split: str,
        arrays: Sequence[str] = ("features",),
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        buffer_chunks: int = 8,
        threads: int = 2,
        rank: int = 0,
        world_size: int = 1,
        limit: int | None = None,
    ):
        if batch_size < 1:
            raise RnemBenchError(f"batch size must be >= 1, got {batch_size}")
        self.arrays = {name: ds.array(split, name) for name in arrays}
        self.n = ds.counts[split] if limit is None else min(limit, ds.counts[split])
        if self.n == 0:
            raise RnemBenchError(f"split '{split}' of {ds.path} is empty")
        self.chunk = ds.recipe.chunk_size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.buffer_chunks = max(1, buffer_chunks)
        self.threads = threads
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _chunk_order(self) -> np.ndarray:
        n_chunks = -(-self.n // self.chunk)
        order = np.arange(n_chunks)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n_chunks)
        return order[self.rank :: self.world_size]

    def _rows(self) -> int:
        starts = self._chunk_order() * self.chunk
        return int(sum(min(s + self.chunk, self.n) - s for s in starts))

    def __len__(self) -> int:
        rows = self._rows()
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def _read(self, chunk_index: int) -> dict[str, np.ndarray]:
        start = int(chunk_index) * self.chunk
        stop = min(start + self.chunk, self.n)
        return {name: arr[start:stop] for name, arr in self.arrays.items()}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = self._chunk_order()
        rng = np.random.default_rng([self.seed, self.epoch, 1])
        groups = [order[i : i + self.buffer_chunks] for i in range(0, len(order), self.buffer_chunks)]
        carry: dict[str, np.ndarray] | None = None
        with ThreadPoolExecutor(self.threads) as pool:
            # Read one buffer ahead of the one being served.
            pending = [pool.submit(lambda g=g: [self._read(c) for c in g]) for g in groups[:2]]
            for gi in range(len(groups)):
                parts = pending[gi].result()
                if gi + 2 < len(groups):
                    pending.append(pool.submit(lambda g=groups[gi + 2]: [self._read(c) for c in g]))
                pending[gi] = None  # free it
                buf = {k: np.concatenate(([carry[k]] if carry else []) + [p[k] for p in parts]) for k in self.arrays}
                rows = len(next(iter(buf.values())))
                perm = rng.permutation(rows) if self.shuffle else np.arange(rows)
                full = rows - rows % self.batch_size
                for i in range(0, full, self.batch_size):
                    idx = perm[i : i + self.batch_size]
                    yield {k: torch.from_numpy(v[idx]) for k, v in buf.items()}
                carry = {k: v[perm[full:]] for k, v in buf.items()} if full < rows else None
        if carry is not None and not self.drop_last:
            yield {k: torch.from_numpy(v) for k, v in carry.items()}
