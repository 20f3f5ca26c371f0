"""Evaluator throughput: test sequences scored per second on the CPU, beside the model it scores.

    python benchmarks/bench_evaluator.py [--n 512]

Streams mixture predictions (K=5 psi and gamma, the heaviest case: BCE, relational BCE and ARI
per step) and single-frame predictions over an N-sequence balls test split (64x64, 30 steps),
batch by batch as `rnem-bench evaluate` does: the truth is read and decompressed from Zarr inside
the timed region; the predictions (made once from the first batch, the cost does not depend on
their values) are not. Best of 3 passes, since the CPU is shared. References in the same run:
- R-NEM K=5 `predict` on the same frames (untrained weights, same cost): the evaluator must be
  far faster than the model, so it is never the bottleneck of an evaluation run;
- scikit-learn's `adjusted_rand_score` frame by frame, the definition our ARI must equal.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.metrics import adjusted_rand_index
from rnem_bench.generators import balls
from rnem_bench.models import build_model, predict
from rnem_bench.recipes import Recipe

K, BATCH = 5, 64


def mixture(feats: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible mixture predictions: each object on a component, softened with noise."""
    labels = np.where(groups == 255, 0, groups)[:, 1:] % K
    gamma = np.ascontiguousarray((np.eye(K, dtype=np.float32)[labels] * 0.9 + 0.02).transpose(0, 1, 4, 2, 3))
    psi = np.clip(gamma * feats[:, 1:, None] + rng.random(gamma.shape, dtype=np.float32) * 0.05, 0, 1)
    return {"psi": psi, "gamma": gamma}


def stream(ds, n: int, preds: dict[str, np.ndarray], passes: int = 3) -> float:
    """Sequences per second of Evaluator.update over the split (best of `passes`), fed `preds`
    (one batch of BATCH sequences) for every batch."""
    best = 0.0
    for _ in range(passes):
        ev = Evaluator(ds, EvalConfig(batch_size=BATCH))
        t = time.perf_counter()
        for start in range(0, n, BATCH):
            ev.update(start, {name: v[: min(BATCH, n - start)] for name, v in preds.items()})
        ev.result()
        best = max(best, n / (time.perf_counter() - t))
    return best


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="test sequences (default 512)")
    n = parser.parse_args().n
    tmp = Path(tempfile.mkdtemp(prefix="rnem-bench-"))
    try:
        recipe = Recipe("balls", asdict(balls.Params()), seed=0, splits={"test": n}, chunk_size=BATCH)
        ds = open_dataset(generate_dataset(recipe, tmp / "b.zarr", workers=2, progress=False))
        feats_all, groups_all = ds.array("test", "features"), ds.array("test", "groups")
        T = feats_all.shape[1] - 1
        rng = np.random.default_rng(0)

        first = feats_all[:BATCH]
        mix = stream(ds, n, mixture(first, groups_all[:BATCH], rng))
        single = stream(ds, n, {"prediction": first[:, :-1].astype(np.float32)})

        # reference 1: the model being evaluated, on 8 sequences of the same data (best of 2)
        model = build_model("rnem", 64)
        batch = torch.from_numpy(feats_all[:8])
        with torch.no_grad():
            predict(model, batch[:2], K, 0.2)  # warm-up
            model_rate = 8 / best_time(lambda: predict(model, batch, K, 0.2), 2)

        # reference 2: sklearn's ARI frame by frame on 4 sequences, against ours on the same frames
        g = groups_all[:4][:, 1:]
        labels = mixture(feats_all[:4], groups_all[:4], rng)["gamma"].argmax(axis=2)

        def sklearn_ari() -> None:
            for seq, lab in zip(g, labels):
                for frame, pred in zip(seq, lab):
                    keep = (frame != 0) & (frame != 255)
                    adjusted_rand_score(frame[keep], pred[keep])

        sk_rate = 4 / best_time(sklearn_ari, 3)
        ours_rate = 4 / best_time(lambda: adjusted_rand_index(torch.from_numpy(labels), torch.from_numpy(g)), 5)

        print(f"test split: {n} sequences x {T} steps, 64x64, torch threads {torch.get_num_threads()}")
        print(f"evaluator, K={K} psi+gamma (BCE, relational BCE, ARI) : {mix:8.0f} sequences/s")
        print(f"evaluator, single-frame predictions (no ARI)         : {single:8.0f} sequences/s")
        print(f"reference: R-NEM K={K} predict, same CPU               : {model_rate:8.1f} sequences/s")
        print(f"  evaluator / model                                  : {mix / model_rate:8.0f}x (must be >> 1)")
        print(f"ARI only, ours (vectorised pair counting)            : {ours_rate:8.0f} sequences/s")
        print(f"reference: sklearn adjusted_rand_score per frame     : {sk_rate:8.1f} sequences/s")
        print(f"  ours / sklearn                                     : {ours_rate / sk_rate:8.0f}x")
        print(f"10,000-sequence test set: evaluator ~{10_000 / mix:.0f} s, model predict ~{10_000 / model_rate:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
