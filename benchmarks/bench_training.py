"""Training speed of the reference models: the reference path against the fast path, in one run.

- reference: eager fp32 with the resize-then-convolve decoder (the code as first written);
- fast: bf16 autocast where the device does bf16 natively (AVX512_BF16 / AMX CPUs, Ampere+ GPUs;
  fp32 elsewhere), the exact phase-decomposed x2 decoder convolutions, channels-last convolution
  weights on CPU, and torch.compile of the EM step on CUDA (on CPU it measured slower than eager:
  ``--compile`` times it anyway). It is what ``rnem-bench run`` uses on CPU; on an H200 it
  measured slower than the reference, so CUDA runs default to the reference path
  (``rnem_bench/models/fastpath.py``);
- ``--variants``: each part of the fast path alone too (phase decoder, bf16, compile, and on CUDA
  CUDA graphs), to find which of them pays on the machine at hand.

For each model it prints seconds per Adam update (median of interleaved reference/fast rounds,
so that load on a shared machine hits both alike), the speed-up, the FLOPs each path executes per
update (torch's FlopCounterMode, forward + backward) and the rate reached, beside the machine's
own fp32 and bf16 matmul rates (2048x2048, measured in the same run: the roofline), and the
forward-only rate that prediction and evaluation see.

    python benchmarks/bench_training.py                  # CPU: mini config, every model, then one paper update
    python benchmarks/bench_training.py --no-paper       # mini config only (~3 minutes on 2 cores)
    python benchmarks/bench_training.py --no-mini        # one R-NEM update of the paper config
    python benchmarks/bench_training.py --models rnem --rounds 5
    python benchmarks/bench_training.py --device cuda    # GPU: paper config, every model
    python benchmarks/bench_training.py --device cuda --variants --models rnem,lstm

Configs: mini = 32x32 frames, batch 32, 20 steps (the CPU tier); paper = 64x64, batch 64,
30 steps (appendix A). K = 5 for the mixture models, 1 for rnn and lstm.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from rnem_bench.models import MODELS, build_model, predict
from rnem_bench.models.fastpath import fast_layout, native_bf16
from rnem_bench.training.harness import sequence_loss


@dataclass(frozen=True)
class BenchConfig:
    image_size: int
    batch_size: int
    steps: int
    k: int = 5


CONFIGS = {"mini": BenchConfig(32, 32, 20), "paper": BenchConfig(64, 64, 30)}


@dataclass(frozen=True)
class RunPath:
    name: str
    bf16: bool
    reference_decoder: bool
    compile: bool = False
    compile_mode: str | None = None   # torch.compile mode, e.g. "reduce-overhead" (CUDA graphs)


def paths(device: torch.device, compile_: bool, variants: bool = False) -> list[RunPath]:
    """The reference path first (the speed-ups are against it), then the fast path; with
    ``variants``, each of the fast path's parts on its own too (which of them pays here)."""
    bf16 = native_bf16(device)
    reference = RunPath("reference fp32", False, True)
    fast = RunPath("fast" + (" bf16" if bf16 else " fp32") + (" compiled" if compile_ else ""), bf16, False, compile_)
    if not variants:
        return [reference, fast]
    out = [reference, RunPath("phase fp32", False, False), RunPath("phase bf16", bf16, False),
           RunPath("phase fp32 compiled", False, False, True), RunPath("phase bf16 compiled", bf16, False, True)]
    if device.type == "cuda":
        out.append(RunPath("phase bf16 cudagraph", bf16, False, True, "reduce-overhead"))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """One model on one path: a training update and a forward-only prediction of a fixed batch."""

    def __init__(self, model: str, cfg: BenchConfig, path: RunPath, device: torch.device):
        torch.manual_seed(0)
        self.net = build_model(model, cfg.image_size).to(device)
        self.net.decoder.use_reference(path.reference_decoder)
        if not path.reference_decoder:
            self.net = fast_layout(self.net, device)
        if path.compile:
            self.net.compile_step(dynamic=False, **({"mode": path.compile_mode} if path.compile_mode else {}))
        self.k = self.net.resolve_k(cfg.k)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.gen = torch.Generator(device).manual_seed(0)
        shape = (cfg.batch_size, cfg.steps + 1, cfg.image_size, cfg.image_size)
        self.frames = (torch.rand(shape, generator=self.gen, device=device) > 0.9).to(torch.uint8)
        self.path, self.device = path, device

    def update(self) -> None:
        if self.path.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()   # a new iteration: earlier graph outputs may be reused
        loss = sequence_loss(self.net, self.frames, self.k, 0.2, self.gen, bf16=self.path.bf16)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        sync(self.device)

    def forward(self) -> None:
        predict(self.net, self.frames, self.k, 0.2, bf16=self.path.bf16)
        sync(self.device)

    def flops(self, fn: Callable[[], None]) -> float:
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return counter.get_total_flops()


def _or_nan(fn: Callable[[], float]) -> float:
    try:
        return fn()
    except Exception:   # e.g. FlopCounterMode around a CUDA-graph replay
        return float("nan")


def interleaved(fns: list[Callable[[], None]], rounds: int) -> list[float]:
    """Median seconds of each fn over ``rounds`` rounds that run every fn once, in turn."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def matmul_rate(dtype: torch.dtype, device: torch.device, n: int = 2048, reps: int = 8) -> float:
    """GFLOP/s of an n x n matmul in ``dtype``: the roofline these models are held against."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def bench(models: list[str], cfg_name: str, device: torch.device, rounds: int, compile_: bool,
          forward: bool, bf16_rate: float, variants: bool = False) -> None:
    cfg = CONFIGS[cfg_name]
    print(f"\n== {cfg_name}: {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, {cfg.steps} steps, "
          f"K={cfg.k} (1 for rnn/lstm); median of {rounds} interleaved rounds after 1 warm-up")
    print(f"{'model':<11} {'path':<21} {'s/update':>9} {'speed-up':>9} {'GFLOP':>7} {'GFLOP/s':>8} "
          f"{'% bf16 roof':>11} {'fwd seq/s':>10} {'fwd x':>6}")
    for name in models:
        runners = []
        for p in paths(device, compile_, variants):
            try:
                runner = Runner(name, cfg, p, device)
                for _ in range(2):
                    runner.update()                       # warm-up (and compilation)
                runners.append(runner)
            except Exception as e:                        # a variant this torch cannot run: say so, go on
                print(f"{name:<11} {p.name:<21} failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}", flush=True)
        flops = [_or_nan(lambda: r.flops(r.update)) for r in runners]
        secs = interleaved([r.update for r in runners], rounds)
        fwd = [float("nan")] * len(runners)
        if forward:
            try:
                for r in runners:
                    r.forward()
                fwd = [cfg.batch_size / s for s in interleaved([r.forward for r in runners], rounds)]
            except Exception as e:
                print(f"{name:<11} forward-only timing failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}")
        for i, (r, s, f) in enumerate(zip(runners, secs, flops)):
            rate = f / s / 1e9
            print(f"{name:<11} {r.path.name:<21} {s:9.3f} {secs[0] / s:8.2f}x {f / 1e9:7.1f} {rate:8.1f} "
                  f"{100 * rate / bf16_rate:10.0f}% {fwd[i]:10.1f} {fwd[i] / fwd[0]:5.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", default=None, help="comma-separated (default: all)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per model (median)")
    ap.add_argument("--no-paper", action="store_true", help="CPU: skip the one paper-config update")
    ap.add_argument("--no-mini", action="store_true", help="CPU: only the paper-config update")
    ap.add_argument("--compile", action="store_true", help="also torch.compile the fast path on CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--variants", action="store_true",
                    help="also time each part of the fast path alone (phase decoder, bf16, compile, CUDA graphs)")
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
    models = args.models.split(",") if args.models else list(MODELS)
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    fp32_rate, bf16_rate = matmul_rate(torch.float32, device), matmul_rate(torch.bfloat16, device)
    print(f"device: {where}; torch {torch.__version__}; native bf16: {native_bf16(device)}")
    print(f"roofline (2048x2048 matmul): fp32 {fp32_rate:.0f} GFLOP/s, bf16 {bf16_rate:.0f} GFLOP/s")
    compile_ = cuda or args.compile
    if cuda:
        bench(models, "paper", device, max(args.rounds, 10), compile_, True, bf16_rate, args.variants)
        return
    if not args.no_mini:
        bench(models, "mini", device, args.rounds, compile_, True, bf16_rate, args.variants)
    if not args.no_paper:
        bench(["rnem"], "paper", device, 1, compile_, False, bf16_rate)


if __name__ == "__main__":
    main()
