"""Evaluator throughput: test sequences scored per second on the CPU, beside the model it scores.

    python benchmarks/bench_evaluator.py

Scores mixture predictions (K=5 psi and gamma, the heaviest case: BCE, relational BCE and ARI
per step) and single-frame predictions of a 1,024-sequence test split, and in the same run
measures R-NEM's own prediction speed on the same frames (untrained weights, same cost). The
evaluator must be far faster than the model, so it is never the bottleneck of `evaluate`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.generators import balls
from rnem_bench.models import build_model, predict
from rnem_bench.recipes import Recipe

N, K = 1024, 5


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rnem-bench-"))
    try:
        recipe = Recipe("balls", asdict(balls.Params()), seed=0, splits={"test": N}, chunk_size=64)
        ds = open_dataset(generate_dataset(recipe, tmp / "b.zarr", workers=2, progress=False))
        feats = ds.array("test", "features")[:]
        groups = ds.array("test", "groups")[:]
        T = feats.shape[1] - 1
        rng = np.random.default_rng(0)
        # plausible mixture predictions: each object on a component, softened with noise
        labels = np.where(groups == 255, 0, groups)[:, 1:] % K
        gamma = (np.eye(K, dtype=np.float32)[labels] * 0.9 + 0.02).transpose(0, 1, 4, 2, 3)
        psi = np.clip(gamma * feats[:, 1:, None] + rng.random(gamma.shape, dtype=np.float32) * 0.05, 0, 1)

        def rate(preds: dict) -> float:
            ev = Evaluator(ds, EvalConfig(batch_size=64))
            t = time.perf_counter()
            ev.eval(preds)
            return N / (time.perf_counter() - t)

        mix = rate({"psi": psi, "gamma": gamma})
        single = rate({"prediction": feats[:, :-1].astype(np.float32)})
        model = build_model("rnem", 64)
        batch = torch.from_numpy(feats[:16])
        predict(model, batch[:2], K, 0.2)
        t = time.perf_counter()
        predict(model, batch, K, 0.2)
        model_rate = 16 / (time.perf_counter() - t)
        print(f"evaluator, K={K} psi+gamma (BCE, relational BCE, ARI): {mix:8.0f} sequences/s  ({T} steps)")
        print(f"evaluator, single-frame predictions (no ARI)          : {single:8.0f} sequences/s")
        print(f"R-NEM K={K} predict on the same CPU (reference)          : {model_rate:8.1f} sequences/s")
        print(f"evaluator / model                                       : {mix / model_rate:8.0f}x (must be >> 1)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
