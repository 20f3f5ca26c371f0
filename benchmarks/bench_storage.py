"""Storage speed: codec choice for the Zarr arrays, and the training loader's throughput.

    python benchmarks/bench_storage.py

Codecs: each candidate compresses real 64-sequence chunks of features and groups; we print
compression ratio and single-call encode/decode speed. The chosen codec (store.FRAME_CODEC) must
keep the 70,000-sequence write under 2 minutes and decode faster than the loader needs.
Loader: random minibatches of 64 sequences from a 4,096-sequence split (best of 3 epochs after a
warm-up one), features only (what training reads) and features + groups + collisions (what
evaluation reads); the reference in the same run is a loop of per-sequence random reads straight
from Zarr.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numcodecs
import numpy as np

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.loader import SequenceLoader
from rnem_bench.data.store import open_dataset
from rnem_bench.generators import balls
from rnem_bench.recipes import Recipe

CANDIDATES = {
    "blosc zstd-1 bitshuffle": numcodecs.Blosc("zstd", 1, numcodecs.Blosc.BITSHUFFLE),
    "blosc zstd-3 bitshuffle (chosen)": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.BITSHUFFLE),
    "blosc lz4-5 bitshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.BITSHUFFLE),
    "blosc lz4-5 noshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE),
    "zstd-1": numcodecs.Zstd(1),
    "zlib-1": numcodecs.Zlib(1),
}


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_codecs() -> None:
    chunk = balls.make_chunk(balls.Params(), 0, "train", 0, 64)
    print(f"{'codec':34s} {'array':9s} {'ratio':>7s} {'enc MB/s':>9s} {'dec MB/s':>9s}")
    for name, codec in CANDIDATES.items():
        for array in ("features", "groups"):
            x = chunk[array]
            enc = codec.encode(x)
            t_enc = best_of(lambda: codec.encode(x))
            t_dec = best_of(lambda: codec.decode(enc))
            print(f"{name:34s} {array:9s} {x.nbytes / len(enc):7.1f} {x.nbytes / t_enc / 1e6:9.0f} {x.nbytes / t_dec / 1e6:9.0f}")


def bench_loader(n: int = 4096) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rnem-bench-"))
    try:
        recipe = Recipe("balls", asdict(balls.Params()), seed=0, splits={"train": n}, chunk_size=64)
        ds = open_dataset(generate_dataset(recipe, tmp / "b.zarr", workers=2, progress=False))
        rng = np.random.default_rng(0)
        arr = ds.array("train", "features")
        t = time.perf_counter()
        for i in rng.integers(0, n, 64 * 2):
            arr[i]
        naive = 128 / (time.perf_counter() - t)
        print(f"reference: per-sequence random zarr reads   {naive:8.0f} sequences/s")
        for arrays in (("features",), ("features", "groups", "collisions")):
            loader = SequenceLoader(ds, "train", arrays=arrays, batch_size=64)
            epoch = lambda: sum(b["features"].shape[0] for b in loader)  # noqa: E731
            epoch()  # warm-up: first reads of the store, thread pool start
            rate = n / best_of(epoch, repeats=3)
            target = "; target >= 5000 (what training reads)" if arrays == ("features",) else ""
            print(f"SequenceLoader {'+'.join(arrays):28s} {rate:8.0f} sequences/s  ({rate / naive:.0f}x reference, "
                  f"best of 3 epochs{target})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    bench_codecs()
    bench_loader()
