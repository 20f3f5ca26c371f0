"""One training update, the unit every training path runs: eagerly, or on CUDA captured once as
a CUDA graph and replayed (``TrainStep``).

Why a graph: on the one GPU measured (an H200, benchmarks/results/gpu_h200_2026-11-30.txt) a
paper-config R-NEM update took 0.222 s in eager fp32 and used 2% of the GPU: ~30 unrolled EM
steps of hundreds of small kernels each, forward and backward, launched one by one from Python.
A CUDA graph records the launches of one whole update (forward over all steps, loss, backward,
the Adam step) once and replays them with one call (PyTorch's "whole-network capture"). How much
that saves has not been measured yet (``benchmarks/gpu_check.sh`` measures it).

Why the two paths train the same run:

- the random draws of an update (bit-flip noise, then the initial gamma) are made eagerly from
  the run's generator just before it, in the eager path's order, and copied into the graph's
  static inputs: the random stream, and so the run, is the same;
- the graph records ``update``, the function the eager path calls; nothing in it reads a value
  back to the host (``.item()``, ``.cpu()``) or branches on data;
- on CUDA the optimiser is ``Adam(capturable=True)`` on both paths (its step count lives on the
  GPU, where a replay can advance it), so a run may switch paths when resumed.

So fp32 updates run the same kernels on both paths. With bf16 they differ at bf16 rounding:
autocast's cache of bf16 weight copies must be off inside a graph (PyTorch's rule), so the
gradient of a weight used at every step is summed in fp32 rather than in bf16.

The first ``WARMUP`` updates run eagerly on a side stream (cuDNN's autotuning and the optimiser's
state are created there, before a capture), the next one is captured and then every update
replays it. A capture that raises leaves the run eager, with a one-line warning. The capturing
itself is ``rnem_bench.graphs.GraphedCall``, which validation and evaluation use too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from rnem_bench.graphs import WARMUP, GraphedCall
from rnem_bench.models.fastpath import autocast
from rnem_bench.models.nem import bitflip, init_gamma

__all__ = ["WARMUP", "StepInputs", "draw_inputs", "forward", "update", "make_optimizer", "match_capturable", "TrainStep"]


@dataclass
class StepInputs:
    """What one update reads, all on the model's device."""

    inputs: torch.Tensor                 # (B, T, H, W) float: frames 0..T-1 with bit-flip noise
    targets: torch.Tensor                # (B, T, H, W) float: the clean frames 1..T
    gamma0: torch.Tensor                 # (B, K, H, W): the initial assignments
    actions: torch.Tensor | None = None  # (B, T) long, for datasets with actions

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]


def draw_inputs(frames: torch.Tensor, k: int, noise: float, gen: torch.Generator,
                actions: torch.Tensor | None = None) -> StepInputs:
    """One batch's inputs: frames (B, T+1, H, W) 0/1 on the model's device. Draws the bit-flip
    noise, then the initial gamma, from ``gen``: that order is the run's random stream."""
    x = frames.float()
    B, _, H, _ = x.shape
    inputs = bitflip(x[:, :-1], noise, gen)
    gamma0 = init_gamma(B, k, H, gen, device=x.device)
    return StepInputs(inputs, x[:, 1:], gamma0, actions)


def forward(model: torch.nn.Module, batch: StepInputs, bf16: bool = False,
            record: bool = False) -> dict[str, torch.Tensor]:
    """The model over all steps: always "loss"; with ``record`` also "psi" and "gamma"."""
    with autocast(batch.inputs.device, bf16):
        return model(batch.inputs, batch.targets, batch.gamma0, batch.actions, record=record)


def update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: StepInputs,
           bf16: bool = False) -> torch.Tensor:
    """One Adam update: forward, loss, backward, step; returns the loss (detached). This is what
    a CUDA graph captures, so it never reads a value back to the host or branches on data."""
    loss = forward(model, batch, bf16)["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def make_optimizer(params: Iterable[torch.nn.Parameter], lr: float, device: torch.device) -> torch.optim.Adam:
    """The run's Adam: capturable on CUDA, on both paths (see the module docstring)."""
    return torch.optim.Adam(params, lr=lr, capturable=device.type == "cuda")


def match_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make a loaded optimizer state fit ``device``: loading restores the saved groups' flags, and
    a checkpoint resumed on another device carries the other kind of step count (a CUDA tensor
    when capturable, a CPU one otherwise, where capturable Adam cannot step). Values are kept."""
    capturable = device.type == "cuda"
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(device=p.device if capturable else "cpu", dtype=torch.float32)


class TrainStep:
    """Runs ``update`` for the training loop: eagerly, or with ``graph`` (single-process CUDA)
    warmed up, captured once and replayed (``rnem_bench.graphs.GraphedCall``). ``warn`` is told,
    in one line, when a capture fails and the run goes on eagerly."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, bf16: bool = False,
                 graph: bool = False, warn: Callable[[str], None] | None = None):
        self.model, self.optimizer, self.bf16 = model, optimizer, bf16
        # zero_grad(set_to_none) before the capture: backward then allocates the grads in the graph's pool
        clear = lambda: optimizer.zero_grad(set_to_none=True)  # noqa: E731
        self._call = GraphedCall(self._update, graph, "training", warn, before_capture=clear, on_failure=clear)

    def _update(self, inputs: torch.Tensor, targets: torch.Tensor, gamma0: torch.Tensor,
                actions: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {"loss": update(self.model, self.optimizer, StepInputs(inputs, targets, gamma0, actions), self.bf16)}

    @property
    def graph_wanted(self) -> bool:
        return self._call.enabled

    @property
    def captured(self) -> bool:
        return self._call.captured

    @property
    def eager_updates(self) -> int:
        return self._call.eager_calls

    def __call__(self, batch: StepInputs) -> torch.Tensor:
        """One update on ``batch`` (drawn with ``draw_inputs``); returns its loss (detached)."""
        return self._call(batch.inputs, batch.targets, batch.gamma0, batch.actions)["loss"]
