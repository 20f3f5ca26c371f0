"""Generator speed: our Numba simulator against a plain NumPy per-frame reference, same workload.

The reference is written here in the style of the classic bouncing-balls scripts (Sutskever et
al. 2009 and its copies): Python loops over frames, Euler sub-steps, pairwise overlap tests,
and full-image NumPy rendering per ball. Both produce the same arrays (binary frames, group
labels, collision masks, states) for 4 balls, 31 frames of 64x64.

    python benchmarks/bench_generators.py            # simulator ratio
    python benchmarks/bench_generators.py --dataset  # also write the paper-scale balls4 (70,000)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rnem_bench.generators import balls, empty_chunk


def reference_sequence(rng: np.random.Generator, p: balls.Params, substeps: int = 2) -> dict[str, np.ndarray]:
    """One sequence, the classic way (per-frame Python, NumPy rendering)."""
    size, n, frames = p.image_size, p.n_balls[1], p.frames
    r_light, r_heavy = p.radii_px
    heavy = rng.random(n) < p.heavy_prob
    radii = np.where(heavy, r_heavy, r_light)
    masses = np.where(heavy, p.heavy_mass_ratio, 1.0)
    pos = np.zeros((n, 2))
    for i in range(n):
        while True:
            pos[i] = radii[i] + rng.random(2) * (size - 2 * radii[i])
            if all(np.linalg.norm(pos[i] - pos[j]) > radii[i] + radii[j] for j in range(i)):
                break
    angle = rng.random(n) * 2 * np.pi
    vel = (p.speed * p.scale * np.stack([np.cos(angle), np.sin(angle)], -1))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    features = np.zeros((frames, size, size), np.uint8)
    groups = np.zeros((frames, size, size), np.uint8)
    collisions = np.zeros((frames, size, size), np.uint8)
    positions = np.zeros((frames, n, 2), np.float32)
    for t in range(frames):
        collided = np.zeros(n, bool)
        if t > 0:
            for _ in range(substeps):
                for i in range(n):
                    for j in range(i + 1, n):
                        d = pos[j] - pos[i]
                        dist = np.linalg.norm(d)
                        if dist < radii[i] + radii[j]:
                            u = d / dist
                            vi, vj = vel[i] @ u, vel[j] @ u
                            mi, mj = masses[i], masses[j]
                            vel[i] += (((mi - mj) * vi + 2 * mj * vj) / (mi + mj) - vi) * u
                            vel[j] += (((mj - mi) * vj + 2 * mi * vi) / (mi + mj) - vj) * u
                            collided[i] = collided[j] = True
                pos += vel / substeps
                for i in range(n):
                    for a in range(2):
                        if pos[i, a] - radii[i] < 0 or pos[i, a] + radii[i] > size:
                            vel[i, a] = -vel[i, a]
        soft = np.zeros((size, size))
        for i in range(n):
            disc = np.exp(-((((xx - pos[i, 0]) ** 2 + (yy - pos[i, 1]) ** 2) / radii[i] ** 2) ** 4))
            soft += disc
            mask = disc > 0.5
            groups[t][mask] = np.where(groups[t][mask] > 0, 255, i + 1)
            if collided[i]:
                collisions[t][mask] = 1
        features[t] = np.minimum(soft, 1) > 0.5
        positions[t] = pos
    return {"features": features, "groups": groups, "collisions": collisions, "positions": positions}


def bench_simulators(n_ref: int, n_ours: int, chunk: int = 64) -> None:
    p = balls.Params()
    rng = np.random.default_rng(0)
    reference_sequence(rng, p)
    t = time.perf_counter()
    for _ in range(n_ref):
        reference_sequence(rng, p)
    ref_rate = n_ref / (time.perf_counter() - t)

    def ours(reuse: bool) -> float:
        """make_chunk over n_ours sequences; ``reuse``: into one buffer, as generate's workers run it."""
        out = empty_chunk(balls.layout(p), chunk) if reuse else None
        t = time.perf_counter()
        for start in range(0, n_ours - chunk + 1, chunk):
            balls.make_chunk(p, 0, "train", start, start + chunk, out=out)
        return (n_ours - n_ours % chunk) / (time.perf_counter() - t)

    ours(reuse=True)  # compile or load the Numba cache, warm the threads
    reused, fresh = ours(reuse=True), ours(reuse=False)
    print(f"numpy reference : {ref_rate:10.1f} sequences/s  ({n_ref} sequences)")
    print(f"rnem-bench numba: {reused:10.1f} sequences/s  ({n_ours} sequences in chunks of {chunk}, all cores, "
          f"buffers reused as generate does)")
    print(f"  fresh arrays  : {fresh:10.1f} sequences/s  (a new chunk of arrays per call: page faults)")
    print(f"ratio           : {reused / ref_rate:10.1f}x  (target >= 100x)")


def bench_dataset(workers: int) -> None:
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.tasks import get_task

    recipe = get_task("balls4").recipe()
    tmp = Path(tempfile.mkdtemp(prefix="rnem-bench-"))
    try:
        t = time.perf_counter()
        generate_dataset(recipe, tmp / "balls4.zarr", workers=workers, progress=True)
        dt = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (tmp / "balls4.zarr").rglob("*") if f.is_file())
        n = sum(recipe.splits.values())
        print(f"balls4 paper scale: {n} sequences written, compressed, complete in {dt:.1f} s "
              f"({n / dt:.0f} sequences/s, {workers} workers, {size / 2**20:.0f} MiB on disk; target < 120 s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-ref", type=int, default=40)
    ap.add_argument("--n-ours", type=int, default=8192)
    ap.add_argument("--chunk", type=int, default=64, help="sequences per make_chunk call (generate's chunk size: 64)")
    ap.add_argument("--dataset", action="store_true", help="also write the 70,000-sequence balls4 dataset")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    bench_simulators(args.n_ref, args.n_ours, args.chunk)
    if args.dataset:
        bench_dataset(args.workers)
