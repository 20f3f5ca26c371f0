"""The fast path's settings that are not in the model's maths: bf16 autocast where it runs
natively, and the memory layout of the convolution weights.

bf16 pays only where the hardware multiplies in bf16: CUDA GPUs from Ampere on, and CPUs with
AVX512_BF16 or AMX (a 2048x2048 bf16 matmul on 2 cores: ~2.5x the fp32 rate on a Zen 4, ~5.3x
with AMX on a Xeon). Elsewhere autocast emulates bf16 in software and is slower than fp32, so
the fast path falls back to fp32.
Convolutions and matmuls run in bf16; the decoder's sigmoid, the loss and the E-step stay fp32.

On CPU, channels-last convolution weights (and so feature maps) save oneDNN a reorder per call:
~10% of an R-NEM update on 32x32 frames (benchmarks/bench_training.py). The decoder follows the
weights' layout for its first feature map too (the fc output), a further 2-5% per update.

On CUDA the fast path did not pay where it was measured: on one H200 (paper config, 64x64,
batch 64, 30 steps; benchmarks/gpu_check.sh, 2026-11-30) eager fp32 with the resize decoder took
0.222 s per R-NEM update and bf16 + phase decoder + torch.compile 0.368 s (0.60x; LSTM 0.57x,
RNN 0.60x, RNN-EM 0.71x). At these sizes the GPU waits on kernel launches (7 TFLOP/s, 2% of its
bf16 matmul rate), where saved FLOPs do not pay and bf16 casts add kernels (a guess until the
parts are timed alone). So a CUDA run defaults to that measured faster path until the parts are
measured one by one (``bash benchmarks/gpu_check.sh`` times each part alone); ``--bf16``,
``--compile`` and ``--phase-decoder`` opt in.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager

import torch
from torch import nn


def native_bf16(device: str | torch.device) -> bool:
    """True where bf16 matmuls and convolutions run in hardware on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


@dataclass(frozen=True)
class SpeedDefaults:
    """What a run on a device uses unless told otherwise (see the module docstring for why)."""
    bf16: bool
    compile: bool
    reference_decoder: bool


def speed_defaults(device: str | torch.device) -> SpeedDefaults:
    """CPU (and any non-CUDA device): bf16 where native, the phase decoder, eager.
    CUDA: eager fp32 with the resize decoder, the faster path measured on an H200."""
    if torch.device(device).type == "cuda":
        return SpeedDefaults(bf16=False, compile=False, reference_decoder=True)
    return SpeedDefaults(bf16=native_bf16(device), compile=False, reference_decoder=False)


def autocast(device: str | torch.device, bf16: bool) -> ContextManager:
    """bf16 autocast on ``device`` when ``bf16``, else a no-op context."""
    if not bf16:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def fast_layout(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model`` with channels-last convolution weights on CPU (values unchanged); as is elsewhere."""
    if torch.device(device).type == "cpu":
        return model.to(memory_format=torch.channels_last)
    return model
