"""Does R-NEM learn on a CPU? A convergence check (not a speed benchmark; `make bench` skips it).

N-EM models first settle on a symmetric solution: every component predicts the same
input-independent image, gamma stays uniform and ARI is near 0. This script trains a model on a
small 32x32 bouncing-balls dataset (3 balls, 10 steps, K=4, batch 16, Adam 1e-3, noise 0.2) and
prints the validation loss, the ARI of its groupings and how much the K predictions differ
(``psi-spread``) every 200 updates, so the break out of that plateau can be seen in CPU time.

    python benchmarks/learning_check.py                    # R-NEM, fast path, 45 minutes on 2 threads
    python benchmarks/learning_check.py --path reference   # eager fp32, resize-then-convolve decoder
    python benchmarks/learning_check.py --model rnn-em --minutes 20
    python benchmarks/learning_check.py --log fast.jsonl ... ; --plot curves.png fast.jsonl reference.jsonl

The fast path (bf16 autocast where native, the exact phase-decomposed decoder) must leave the
plateau and reach the same ARI band as the reference path; ``--plot`` draws the logged curves
against updates and against minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.metrics import adjusted_rand_index, assignments
from rnem_bench.generators import balls
from rnem_bench.models import build_model, predict
from rnem_bench.models.fastpath import fast_layout, native_bf16
from rnem_bench.recipes import Recipe
from rnem_bench.training.harness import sequence_loss

STEPS, K, BATCH, SIZE = 10, 4, 16, 32


def main(model_name: str, minutes: float, threads: int, every: int, path: str, log: str | None) -> None:
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
    reference = path == "reference"
    model.decoder.use_reference(reference)
    if not reference:
        model = fast_layout(model, "cpu")
    bf16 = not reference and native_bf16("cpu")
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    print(f"{model_name}: {SIZE}x{SIZE}, 3 balls, {STEPS} steps, K={K}, batch {BATCH}, {threads} threads, "
          f"{path} path ({'bf16' if bf16 else 'fp32'})")
    out = open(log, "a") if log else None
    start, updates = time.perf_counter(), 0
    while time.perf_counter() - start < minutes * 60:
        batch = torch.from_numpy(train[rng.choice(len(train), BATCH, replace=False)])
        loss = sequence_loss(model, batch, K, 0.2, gen, bf16=bf16)
        opt.zero_grad()
        loss.backward()
        opt.step()
        updates += 1
        if updates % every == 0:
            model.eval()
            with torch.no_grad():
                # scored in fp32 on both paths, so that only training differs
                valid_loss = sequence_loss(model, valid, K, 0.2, torch.Generator().manual_seed(1)).item()
                pred = predict(model, valid, k=K, noise=0.2)
                ari = adjusted_rand_index(assignments(pred["gamma"]), groups).mean().item()
                spread = pred["psi"].std(dim=2).mean().item()  # 0: all K components predict the same
            model.train()
            seconds = time.perf_counter() - start
            print(f"{updates:6d} updates {seconds:6.0f} s  valid loss {valid_loss:7.1f}  "
                  f"ARI {ari:.3f}  psi-spread {spread:.4f}", flush=True)
            if out:
                out.write(json.dumps({"path": path, "model": model_name, "threads": threads, "updates": updates,
                                      "seconds": round(seconds, 1), "valid_loss": valid_loss, "ari": ari,
                                      "psi_spread": spread}) + "\n")
                out.flush()


def plot(out: str, logs: list[str]) -> None:
    """Valid loss and ARI of each logged run against updates and against minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharey="row")
    for log in logs:
        rows = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
        label = f"{rows[0]['path']} ({rows[0]['model']}, {rows[0]['threads']} threads)"
        for col, x in enumerate([[r["updates"] for r in rows], [r["seconds"] / 60 for r in rows]]):
            axes[0, col].plot(x, [r["valid_loss"] for r in rows], label=label)
            axes[1, col].plot(x, [r["ari"] for r in rows], label=label)
    for col, name in enumerate(["updates", "minutes"]):
        axes[1, col].set_xlabel(name)
    axes[0, 0].set_ylabel("validation loss")
    axes[1, 0].set_ylabel("ARI")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="rnem")
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=200, help="updates between reports")
    ap.add_argument("--path", choices=["fast", "reference"], default="fast",
                    help="fast: bf16 where native + phase decoder; reference: eager fp32, resize-then-convolve")
    ap.add_argument("--log", default=None, help="append each report to this JSONL file")
    ap.add_argument("--plot", default=None, metavar="PNG", help="draw the JSONL logs given as arguments and exit")
    ap.add_argument("logs", nargs="*", help="with --plot: JSONL logs to draw")
    args = ap.parse_args()
    if args.plot:
        plot(args.plot, args.logs)
    else:
        main(args.model, args.minutes, args.threads, args.every, args.path, args.log)
