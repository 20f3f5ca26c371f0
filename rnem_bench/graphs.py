"""A function of tensors replayed as a CUDA graph: ``GraphedCall``.

Why: the reference models unroll 20-50 EM steps of hundreds of small kernels each; on a GPU their
launches from Python, not the arithmetic, set the pace (an H200 ran an R-NEM update at 2% of its
matmul rate, benchmarks/results/gpu_h200_2026-11-30.txt). A CUDA graph records the launches of one
call once and replays them with one launch (PyTorch's "whole-network capture"). The training update
(``training/step.py``), validation (``training/harness.py``) and evaluation's predictions and
rollouts (``models/inference.py``) all go through this one class.

The rules a captured function follows (PyTorch's): static shapes (each call's tensors are copied
into the graph's own input tensors, so a call of other shapes, e.g. the last partial batch, runs
eagerly), nothing read back to the host (``.item()``, ``.cpu()``) and no branch on data inside it,
random draws made by the caller before the call. ``WARMUP`` eager calls on a side stream come
first (cuDNN's autotuning, an optimiser's state), then one call is captured and every later call
of the same shapes replays it. A capture that raises leaves the call eager, with a one-line
warning; off CUDA a ``GraphedCall`` is a plain call.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Sequence

import torch

WARMUP = 3  # eager calls before the capture (PyTorch's whole-network example warms up 3)

Tensors = Sequence[torch.Tensor | None]


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr)


class GraphedCall:
    """Calls ``fn(*tensors) -> {name: tensor}``: eagerly, or with ``enabled`` on CUDA after
    ``WARMUP`` eager calls captured once and replayed for every call of the same shapes and dtypes
    (``None`` arguments stay ``None``). The outputs of a replay are copies (the next replay
    overwrites the graph's own).

    ``before_capture`` runs just before the capture (e.g. ``optimizer.zero_grad(set_to_none=True)``
    so that backward allocates the gradients in the graph's memory) and ``on_failure`` after a
    capture that raised; ``what`` names the work in the warning ("training goes on eagerly"),
    which goes to ``warn`` (default: a line on stderr)."""

    def __init__(self, fn: Callable[..., dict[str, torch.Tensor]], enabled: bool, what: str = "the call",
                 warn: Callable[[str], None] | None = None, before_capture: Callable[[], None] | None = None,
                 on_failure: Callable[[], None] | None = None):
        self.fn, self.enabled, self.what, self.warn = fn, enabled, what, warn or _stderr_line
        self.before_capture, self.on_failure = before_capture, on_failure
        self.eager_calls = 0
        self.replays = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: list[torch.Tensor | None] | None = None  # the graph's inputs: each call is copied into them
        self._outputs: dict[str, torch.Tensor] | None = None

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def __call__(self, *tensors: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if self._graph is None and self.enabled and self.eager_calls >= WARMUP:
            self._capture(tensors)
        if self._graph is not None and _fits(self._inputs, tensors):
            return self._replay(tensors)
        warming_up = self.enabled and self._graph is None
        device = next((t.device for t in tensors if t is not None), torch.device("cpu"))
        with _side_stream(device) if warming_up else nullcontext():
            out = self.fn(*tensors)
        self.eager_calls += 1
        return out

    def _capture(self, tensors: Tensors) -> None:
        """Record one call on static copies of ``tensors`` (recording computes nothing: the call
        of ``tensors`` itself is the first replay). On failure, warn once and stay eager."""
        try:
            static = [None if t is None else t.clone() for t in tensors]
            if self.before_capture is not None:
                self.before_capture()
            graph = torch.cuda.CUDAGraph()
            with _no_autocast_cache(), torch.cuda.graph(graph):
                outputs = self.fn(*static)
        except Exception as err:  # noqa: BLE001 - any failure to capture: go on, eagerly
            self.enabled = False
            if self.on_failure is not None:
                self.on_failure()
            reason = (str(err).strip().splitlines() or [""])[0][:160]
            self.warn(f"warning: CUDA graph capture failed ({type(err).__name__}: {reason}); {self.what} goes on eagerly")
            return
        self._graph, self._inputs, self._outputs = graph, static, outputs

    def _replay(self, tensors: Tensors) -> dict[str, torch.Tensor]:
        for static, new in zip(self._inputs, tensors):
            if static is not None:
                static.copy_(new)
        self._graph.replay()
        self.replays += 1
        return {name: t.clone() for name, t in self._outputs.items()}


def _fits(static: Tensors, tensors: Tensors) -> bool:
    """Whether ``tensors`` can be copied into the graph's inputs (same Nones, shapes and dtypes)."""
    return len(static) == len(tensors) and all(
        (a is None) == (b is None) and (a is None or (a.shape == b.shape and a.dtype == b.dtype))
        for a, b in zip(static, tensors))


@contextmanager
def _side_stream(device: torch.device) -> Iterator[None]:
    """Run the block on a fresh CUDA stream that waits for the current one and is waited on after
    it (PyTorch's warm-up before a capture); a no-op off CUDA."""
    if device.type != "cuda":
        yield
        return
    current = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        yield
    current.wait_stream(side)


@contextmanager
def _no_autocast_cache() -> Iterator[None]:
    """Autocast without its cache of cast weights, which a captured graph must not use."""
    before = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(before)


__all__ = ["GraphedCall", "WARMUP"]
