"""``--device`` as the commands take it (auto, cpu, cuda, cuda:N), checked against this machine."""

from __future__ import annotations

import torch

from rnem_bench.errors import RnemBenchError


def resolve_device(device: str) -> str:
    """``--device`` (auto, cpu, cuda, cuda:N) checked against this machine; one line when it cannot be."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise RnemBenchError(f"--device must be auto, cpu or cuda[:N], got '{device}'")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise RnemBenchError(f"--device {device} was asked for but no CUDA device is available")
        if (parsed.index or 0) >= torch.cuda.device_count():
            raise RnemBenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
