"""Training speed of the reference models: sequences per second of one optimiser step.

Each model is timed in plain eager fp32 (the reference) and in the harness's fast settings
(torch.compile of the EM step; bf16 autocast too on CUDA), in the same process on the same
synthetic batch; the ratio to eager fp32 is the figure. On CUDA it also prints the time of one
epoch of 50,000 training sequences at that speed.

    python benchmarks/bench_training.py                       # CPU: tiny config, rnem and rnn
    python benchmarks/bench_training.py --config paper        # GPU: batch 64, 30 steps, K=5
    python benchmarks/bench_training.py --dataset PATH        # also time the data loader
    python benchmarks/bench_training.py --threads 1           # steadier on shared, loaded CPUs

Configs: tiny = 64x64 frames, batch 8, 6 steps; paper = 64x64, batch 64, 30 steps (balls4).
K = 5 for the mixture models, 1 for rnn and lstm. Compilation time is reported separately.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from rnem_bench.models import MODELS, build_model
from rnem_bench.training.harness import sequence_loss


@dataclass(frozen=True)
class BenchConfig:
    image_size: int
    batch_size: int
    steps: int
    k: int = 5


CONFIGS = {"tiny": BenchConfig(64, 8, 6), "paper": BenchConfig(64, 64, 30)}


@dataclass(frozen=True)
class Variant:
    name: str
    bf16: bool
    compile: bool


def variants(device: torch.device, fast: bool) -> list[Variant]:
    out = [Variant("eager fp32", False, False)]
    if fast:
        out.append(Variant("compiled fp32", False, True))
        if device.type == "cuda":
            out += [Variant("eager bf16", True, False), Variant("compiled bf16", True, True)]
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(name: str, cfg: BenchConfig, variant: Variant, device: torch.device, iters: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model = build_model(name, cfg.image_size).to(device)
    k = model.resolve_k(cfg.k)
    if variant.compile:
        model.compile_step(dynamic=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator(device).manual_seed(0)
    frames = (torch.rand(cfg.batch_size, cfg.steps + 1, cfg.image_size, cfg.image_size, generator=gen, device=device) > 0.9).to(torch.uint8)

    def step() -> float:
        loss = sequence_loss(model, frames, k, 0.2, gen, bf16=variant.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    step()                      # first step: compilation (and cuDNN autotuning)
    sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        loss = step()
    sync(device)
    per_step = (time.perf_counter() - t0) / iters
    return {
        "seq_s": cfg.batch_size / per_step, "step_ms": 1000 * per_step, "first_s": first, "loss": float(loss.detach()),
        "mem_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan"),
    }


def time_loader(path: str, batch_size: int, batches: int) -> float:
    from rnem_bench.data.loader import SequenceLoader
    from rnem_bench.data.store import open_dataset

    loader = SequenceLoader(open_dataset(path), "train", batch_size=batch_size)
    t0, n = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        n += batch["features"].shape[0]
        if i + 1 >= batches:
            break
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=list(CONFIGS), default=None, help="default: paper on CUDA, tiny on CPU")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default=None, help="comma-separated (default: all on CUDA; rnem,rnn on CPU)")
    ap.add_argument("--iters", type=int, default=None, help="timed steps (default: 20 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-fast", action="store_true", help="only eager fp32")
    ap.add_argument("--dataset", default=None, help="also time the SequenceLoader on this dataset")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 gives steadier figures on shared, loaded cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    cfg = CONFIGS[args.config or ("paper" if cuda else "tiny")]
    models = (args.models.split(",") if args.models else (list(MODELS) if cuda else ["rnem", "rnn"]))
    iters = args.iters or (20 if cuda else 3)
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; config {args.config or ('paper' if cuda else 'tiny')}: "
          f"{cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, {cfg.steps} steps, K={cfg.k} (1 for rnn/lstm); "
          f"{iters} timed steps after {args.warmup} warm-up")
    header = f"{'model':<11} {'variant':<14} {'seq/s':>9} {'ms/step':>9} {'vs eager fp32':>14} {'1st step s':>11}"
    header += f" {'epoch 50k s':>12} {'peak GB':>8}" if cuda else ""
    print(header)
    for name in models:
        ref = None
        for v in variants(device, not args.no_fast):
            r = time_model(name, cfg, v, device, iters, args.warmup)
            ref = ref or r
            line = (f"{name:<11} {v.name:<14} {r['seq_s']:9.2f} {r['step_ms']:9.1f} {r['seq_s'] / ref['seq_s']:13.2f}x"
                    f" {r['first_s']:11.1f}")
            if cuda:
                line += f" {50_000 / r['seq_s']:12.1f} {r['mem_gb']:8.2f}"
            print(line, flush=True)
    if args.dataset:
        print(f"loader: {time_loader(args.dataset, cfg.batch_size, 50):.0f} sequences/s from {args.dataset} "
              "(must exceed the training seq/s above)")


if __name__ == "__main__":
    main()
