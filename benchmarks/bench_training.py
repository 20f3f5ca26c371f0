"""Training speed of the reference models: the reference path against the fast path, in one run.

- reference: eager fp32 with the resize-then-convolve decoder (the code as first written);
- fast: bf16 autocast where the device does bf16 natively (AVX512_BF16 / AMX CPUs, Ampere+ GPUs;
  fp32 elsewhere), the exact phase-decomposed x2 decoder convolutions, channels-last convolution
  weights on CPU, and torch.compile of the EM step on CUDA (on CPU it measured slower than eager:
  ``--compile`` times it anyway). It is what ``rnem-bench run`` uses on CPU; on an H200 it
  measured slower than the reference, so CUDA runs default to the reference path
  (``rnem_bench/models/fastpath.py``);
- ``--variants``: each part of the fast path alone too (phase decoder, bf16, compile, and on CUDA
  CUDA graphs), to find which of them pays on the machine at hand;
- ``--paths``: any of the paths by name (``named_paths``), e.g. on CUDA ``reference,captured``: the
  harness's update captured as one CUDA graph (``rnem_bench/training/step.py``, ``run --cuda-graph``),
  or ``reduce-overhead`` (torch.compile's CUDA graphs of the EM step);
- ``--procs N``: each path's updates also in N processes at once (N jobs, ``reproduce --jobs N``)
  against one process, with the threads split among them, in interleaved rounds: seconds per
  update in each process and the updates per second of all of them together.

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
    python benchmarks/bench_training.py --device cuda --paths reference,captured --procs 4
    python benchmarks/bench_training.py --config mini --models rnem,rnn --paths fast --procs 2 --threads 2

Configs: mini = 32x32 frames, batch 32, 20 steps (the CPU tier); paper = 64x64, batch 64,
30 steps (appendix A); tiny = 32x32, batch 4, 3 steps (a dry run of the script). K = 5 for the
mixture models, 1 for rnn and lstm.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from rnem_bench.models import MODELS, build_model, predict
from rnem_bench.models.fastpath import fast_layout, native_bf16
from rnem_bench.training.step import WARMUP, TrainStep, draw_inputs, make_optimizer, update


@dataclass(frozen=True)
class BenchConfig:
    image_size: int
    batch_size: int
    steps: int
    k: int = 5


CONFIGS = {"mini": BenchConfig(32, 32, 20), "paper": BenchConfig(64, 64, 30), "tiny": BenchConfig(32, 4, 3)}


@dataclass(frozen=True)
class RunPath:
    name: str
    bf16: bool
    reference_decoder: bool
    compile: bool = False
    compile_mode: str | None = None   # torch.compile mode, e.g. "reduce-overhead" (CUDA graphs)
    graph: bool = False               # the whole update captured as one CUDA graph (training/step.py)


def named_paths(device: torch.device, compile_: bool) -> dict[str, RunPath]:
    """Every path by the name ``--paths`` takes."""
    bf16 = native_bf16(device)
    return {
        "reference": RunPath("reference fp32", False, True),
        "fast": RunPath("fast" + (" bf16" if bf16 else " fp32") + (" compiled" if compile_ else ""), bf16, False, compile_),
        "captured": RunPath("captured fp32", False, True, graph=True),
        "captured-bf16": RunPath("captured" + (" bf16" if bf16 else " fp32"), bf16, True, graph=True),
        "reduce-overhead": RunPath("reduce-overhead fp32", False, True, True, "reduce-overhead"),
        "phase": RunPath("phase fp32", False, False),
        "phase-bf16": RunPath("phase bf16", bf16, False),
        "phase-compiled": RunPath("phase fp32 compiled", False, False, True),
        "phase-bf16-compiled": RunPath("phase bf16 compiled", bf16, False, True),
        "phase-bf16-cudagraph": RunPath("phase bf16 cudagraph", bf16, False, True, "reduce-overhead"),
    }


def paths(device: torch.device, compile_: bool, variants: bool = False, names: list[str] | None = None) -> list[RunPath]:
    """``names`` (``--paths``), or the reference path first (the speed-ups are against it), then the
    fast path (and on CUDA the captured update); with ``variants``, each of the fast path's parts
    on its own too (which of them pays here)."""
    known = named_paths(device, compile_)
    if names:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"--paths: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        return [known[n] for n in names]
    if not variants:
        return [known[n] for n in ("reference", "fast", "captured")[: 3 if device.type == "cuda" else 2]]
    parts = ["phase", "phase-bf16", "phase-compiled", "phase-bf16-compiled"]
    return [known[n] for n in ["reference", *parts, *(["phase-bf16-cudagraph"] if device.type == "cuda" else [])]]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """One model on one path: a training update (the harness's ``TrainStep``) and a forward-only
    prediction of a fixed batch."""

    def __init__(self, model: str, cfg: BenchConfig, path: RunPath, device: torch.device):
        torch.manual_seed(0)
        self.net = build_model(model, cfg.image_size).to(device)
        self.net.decoder.use_reference(path.reference_decoder)
        if not path.reference_decoder:
            self.net = fast_layout(self.net, device)
        if path.compile:
            self.net.compile_step(dynamic=False, **({"mode": path.compile_mode} if path.compile_mode else {}))
        self.k = self.net.resolve_k(cfg.k)
        self.opt = make_optimizer(self.net.parameters(), 1e-3, device)
        self.step = TrainStep(self.net, self.opt, bf16=path.bf16, graph=path.graph, warn=self._capture_failed)
        self.gen = torch.Generator(device).manual_seed(0)
        shape = (cfg.batch_size, cfg.steps + 1, cfg.image_size, cfg.image_size)
        self.frames = (torch.rand(shape, generator=self.gen, device=device) > 0.9).to(torch.uint8)
        self.path, self.device = path, device

    @staticmethod
    def _capture_failed(message: str) -> None:
        raise RuntimeError(message)  # timing an eager update under the captured path's name would mislead

    def warm_up(self) -> None:
        """Enough updates to compile, autotune, and for a captured path to capture (WARMUP + 1)."""
        for _ in range(WARMUP + 1):
            self.update()

    def update(self) -> None:
        if self.path.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()   # a new iteration: earlier graph outputs may be reused
        self.step(draw_inputs(self.frames, self.k, 0.2, self.gen))
        sync(self.device)

    def eager_update(self) -> None:
        """The same update outside any CUDA graph (what FLOP counting can see)."""
        update(self.net, self.opt, draw_inputs(self.frames, self.k, 0.2, self.gen), self.path.bf16)
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


def bench(models: list[str], cfg_name: str, device: torch.device, rounds: int, run_paths: list[RunPath],
          forward: bool, bf16_rate: float) -> None:
    cfg = CONFIGS[cfg_name]
    print(f"\n== {cfg_name}: {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}, {cfg.steps} steps, "
          f"K={cfg.k} (1 for rnn/lstm); median of {rounds} interleaved rounds after {WARMUP + 1} warm-up updates")
    print(f"{'model':<11} {'path':<21} {'s/update':>9} {'speed-up':>9} {'GFLOP':>7} {'GFLOP/s':>8} "
          f"{'% roof':>11} {'fwd seq/s':>10} {'fwd x':>6}")
    for name in models:
        runners = []
        for p in run_paths:
            try:
                runner = Runner(name, cfg, p, device)
                runner.warm_up()                          # (and compilation, capture)
                runners.append(runner)
            except Exception as e:                        # a variant this torch cannot run: say so, go on
                print(f"{name:<11} {p.name:<21} failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}", flush=True)
        if not runners:
            continue
        flops = [_or_nan(lambda: r.flops(r.eager_update)) for r in runners]
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
        fastest = min(zip(secs, runners), key=lambda pair: pair[0])[1]
        print(f"fastest {name}: {fastest.path.name}", flush=True)


# ------------------------------------------------------------------ N processes at once (--procs)
def _worker(conn: Any, device: str, threads: int) -> None:
    """A benchmark process: builds a Runner when told, times ``n`` of its updates when told."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    runner = None
    while True:
        try:
            command, *args = conn.recv()
        except EOFError:  # the benchmark ended (or was cut by its time limit): so does this process
            return
        try:
            if command == "build":
                runner = None                             # free the last model first
                runner = Runner(*args, dev)
                runner.warm_up()
                conn.send(("ok", None))
            elif command == "time":
                t0 = time.perf_counter()
                for _ in range(args[0]):
                    runner.update()
                conn.send(("ok", time.perf_counter() - t0))
            else:
                return
        except Exception as e:  # say why, and keep serving
            conn.send(("failed", f"{type(e).__name__}: {str(e).splitlines()[0][:90] if str(e) else ''}"))


class Processes:
    """Benchmark processes, each with a pipe: one with all the threads, ``n`` with a share each."""

    def __init__(self, device: torch.device, n: int, threads: int):
        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for t in [threads] + [max(1, threads // n)] * n:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(theirs, str(device), t), daemon=True)
            proc.start()
            self.conns.append(ours)
            self.procs.append(proc)
        self.alone, self.together = self.conns[:1], self.conns[1:]

    def ask(self, conns: list, *command: Any) -> list[Any]:
        """Send ``command`` to every process of ``conns`` (at once), return their answers."""
        for conn in conns:
            conn.send(command)
        answers = [conn.recv() for conn in conns]
        failed = [msg for status, msg in answers if status != "ok"]
        if failed:
            raise RuntimeError(failed[0])
        return [msg for _, msg in answers]

    def close(self) -> None:
        for conn in self.conns:
            conn.send(("stop",))
        for proc in self.procs:
            proc.join(timeout=60)


def bench_procs(models: list[str], cfg_name: str, device: torch.device, rounds: int, run_paths: list[RunPath],
                n: int, threads: int, updates: int) -> None:
    """Per model and path: ``updates`` updates in 1 process with ``threads`` threads, then in ``n``
    processes at once with ``threads // n`` each, in interleaved rounds (median)."""
    cfg = CONFIGS[cfg_name]
    share = max(1, threads // n)
    where = " (all on one GPU)" if device.type == "cuda" else ""
    print(f"\n== {cfg_name}, {n} processes x {share} thread(s) at once vs 1 process x {threads} thread(s){where}; "
          f"median of {rounds} interleaved rounds of {updates} updates each")
    print(f"{'model':<11} {'path':<21} {'1 proc s/upd':>12} {'upd/s':>7} {f'{n} procs s/upd':>13} "
          f"{'upd/s each':>10} {'upd/s all':>9} {'all / 1':>7}")
    procs = Processes(device, n, threads)
    try:
        for name in models:
            for p in run_paths:
                try:
                    procs.ask(procs.conns, "build", name, cfg, p)
                    alone, together = [], []
                    for _ in range(rounds):
                        alone.append(procs.ask(procs.alone, "time", updates)[0])
                        together.append(max(procs.ask(procs.together, "time", updates)))  # until all are done
                except RuntimeError as e:
                    print(f"{name:<11} {p.name:<21} failed: {e}", flush=True)
                    continue
                one, all_ = statistics.median(alone) / updates, statistics.median(together) / updates
                print(f"{name:<11} {p.name:<21} {one:12.3f} {1 / one:7.2f} {all_:13.3f} {1 / all_:10.2f} "
                      f"{n / all_:9.2f} {one * n / all_:6.2f}x", flush=True)
    finally:
        procs.close()


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
    ap.add_argument("--paths", default=None, help="comma-separated path names instead (named_paths: reference, fast, "
                                                  "captured, captured-bf16, reduce-overhead, phase, ...)")
    ap.add_argument("--config", choices=list(CONFIGS), default=None,
                    help="only this config (default: CPU mini + one paper update; CUDA paper)")
    ap.add_argument("--procs", type=int, default=0, help="also time N processes at once against one (0: no)")
    ap.add_argument("--procs-paths", default=None, help="paths for --procs (default: those timed in-process)")
    ap.add_argument("--updates", type=int, default=3, help="--procs: updates per process and round")
    ap.add_argument("--procs-rounds", type=int, default=3, help="--procs: interleaved rounds (median)")
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
    native = native_bf16(device)
    fp32_rate = matmul_rate(torch.float32, device)
    # Emulated bf16 is slower than fp32 (and takes minutes to time on 2 cores): the roof is then fp32's.
    bf16_rate = matmul_rate(torch.bfloat16, device) if native else fp32_rate
    print(f"device: {where}; torch {torch.__version__}; native bf16: {native}")
    print(f"roofline (2048x2048 matmul): fp32 {fp32_rate:.0f} GFLOP/s, "
          + (f"bf16 {bf16_rate:.0f} GFLOP/s (the roof)" if native else "bf16 not native (the roof is fp32's)"))
    compile_ = cuda or args.compile
    names = args.paths.split(",") if args.paths else None
    run_paths = paths(device, compile_, args.variants, names)
    if args.config or cuda:
        cfg = args.config or "paper"
        bench(models, cfg, device, max(args.rounds, 10) if cuda else args.rounds, run_paths, True, bf16_rate)
    else:
        if not args.no_mini:
            bench(models, "mini", device, args.rounds, run_paths, True, bf16_rate)
        if not args.no_paper:
            bench(["rnem"], "paper", device, 1, paths(device, compile_, names=names), False, bf16_rate)
    if args.procs > 0:
        procs_paths = paths(device, compile_, names=args.procs_paths.split(",")) if args.procs_paths else run_paths
        bench_procs(models, args.config or ("paper" if cuda else "mini"), device, args.procs_rounds, procs_paths,
                    args.procs, torch.get_num_threads(), args.updates)


if __name__ == "__main__":
    main()
