"""Does R-NEM learn on a CPU? A convergence check (not a speed benchmark; `make bench` skips it).

N-EM models first settle on a symmetric solution: every component predicts the same
input-independent image, gamma stays uniform and ARI is near 0. This script trains a model on a
small 32x32 bouncing-balls dataset (3 balls, 10 steps, K=4, batch 16, Adam 1e-3, noise 0.2) and
prints the validation loss, the ARI of its groupings and how much the K predictions differ
(``psi-spread``) every 200 updates, so the break out of that plateau can be seen in CPU time.

    python benchmarks/learning_check.py                    # R-NEM for 45 minutes on 2 threads
    python benchmarks/learning_check.py --model rnn-em --minutes 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation.metrics import adjusted_rand_index, assignments
from rnem_bench.generators import balls
from rnem_bench.models import build_model, predict
from rnem_bench.recipes import Recipe
from rnem_bench.training.harness import sequence_loss

STEPS, K, BATCH, SIZE = 10, 4, 16, 32


def main(model_name: str, minutes: float, threads: int, every: int) -> None:
    torch.set_num_threads(threads)
    params = balls.Params(n_balls=(3, 3), image_size=SIZE, steps=STEPS)
    recipe = Recipe("balls", asdict(params), seed=0, splits={"train": 4096, "valid": 256})
    with tempfile.TemporaryDirectory(prefix="rnem-bench-") as tmp:
        ds = open_dataset(generate_dataset(recipe, Path(tmp) / "b32.zarr", progress=False))
        train = np.asarray(ds.array("train", "features")[:])
        valid = torch.from_numpy(np.asarray(ds.array("valid", "features")[:64]))
        groups = torch.from_numpy(np.asarray(ds.array("valid", "groups")[:64, 1:]))
    torch.manual_seed(0)
    model = build_model(model_name, SIZE)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    print(f"{model_name}: {SIZE}x{SIZE}, 3 balls, {STEPS} steps, K={K}, batch {BATCH}, {threads} threads")
    start, updates = time.perf_counter(), 0
    while time.perf_counter() - start < minutes * 60:
        batch = torch.from_numpy(train[rng.choice(len(train), BATCH, replace=False)])
        loss = sequence_loss(model, batch, K, 0.2, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        updates += 1
        if updates % every == 0:
            model.eval()
            with torch.no_grad():
                valid_loss = sequence_loss(model, valid, K, 0.2, torch.Generator().manual_seed(1)).item()
                out = predict(model, valid, k=K, noise=0.2)
                ari = adjusted_rand_index(assignments(out["gamma"]), groups).mean().item()
                spread = out["psi"].std(dim=2).mean().item()  # 0: all K components predict the same
            model.train()
            print(f"{updates:6d} updates {time.perf_counter() - start:6.0f} s  valid loss {valid_loss:7.1f}  "
                  f"ARI {ari:.3f}  psi-spread {spread:.4f}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="rnem")
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=200, help="updates between reports")
    args = ap.parse_args()
    main(args.model, args.minutes, args.threads, args.every)
