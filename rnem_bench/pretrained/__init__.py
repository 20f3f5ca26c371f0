"""Trained models shipped with the package: weights only, fp16, pinned by sha256.

Each entry is a folder ``rnem_bench/pretrained/<name>/`` laid out like a run dir (``config.json``,
``best.pt``, ``log.jsonl``), so every command that takes a RUNDIR takes it: ``rnem-bench evaluate``,
``rnem-bench show`` and ``load_run``. The weights are stored in fp16 (half the size) and loaded
into the fp32 model with ``weights_only=True``; the hash is checked before anything is read.
``export_run`` makes such a folder from a finished run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from rnem_bench.io import check_pinned, file_sha256
from rnem_bench.errors import RnemBenchError

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Pretrained:
    task: str              # the task it was trained on
    description: str
    sha256: str            # of its best.pt


PRETRAINED: dict[str, Pretrained] = {
    # `rnem-bench reproduce --tier mini`, recipe baselines/mini-balls4-rnem-k5.toml, seed 0: 3,125
    # updates at batch 16 on 1 CPU thread (36 min); test split ARI 0.630 (last step 0.744),
    # BCE / copy 0.122 (leaderboards/mini-balls4/rnem-k5-seed0-*.json).
    "mini-balls4-rnem-k5": Pretrained(
        task="mini-balls4", description="R-NEM, K=5, trained on mini-balls4 (seed 0, 3,125 updates)",
        sha256="ea296bd34305468bde0b7b46e2eb817fc990397b596ac969122bdf07c4749adb"),
}


def pretrained_dir(name: str) -> Path:
    """The folder of a shipped model, after checking its weights against the pinned hash."""
    if name not in PRETRAINED:
        raise RnemBenchError(f"no shipped model '{name}' (shipped: {', '.join(PRETRAINED) or 'none'})")
    folder = ROOT / name
    weights = folder / "best.pt"
    check_pinned(weights, PRETRAINED[name].sha256, f"shipped model '{name}' is missing its weights ({weights})")
    return folder


def export_run(rundir: str | Path, dst: str | Path) -> str:
    """Write a finished run's best weights (fp16), config and log to ``dst``; returns the weights' sha256.

    The config's dataset becomes the task name (a path on the training machine means nothing
    elsewhere), so the folder says what it was trained on and works as a RUNDIR anywhere.
    """
    from rnem_bench.io import atomic_torch_save, read_checkpoint
    from rnem_bench.training.checkpoint import BEST, CONFIG, LOG

    rundir, dst = Path(rundir), Path(dst)
    saved = read_checkpoint(rundir / BEST)
    half = {k: v.half() if v.is_floating_point() else v for k, v in saved["model"].items()}
    if not all(torch.isfinite(v).all() for v in half.values() if v.is_floating_point()):
        raise RnemBenchError(f"{rundir}: weights overflow fp16")
    dst.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(dst / "best.pt", {"model": half, "epoch": saved["epoch"], "valid_loss": saved["valid_loss"]})
    config = json.loads((rundir / CONFIG).read_text())
    config["dataset"] = config.get("task") or Path(config["dataset"]).stem
    (dst / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    shutil.copyfile(rundir / LOG, dst / LOG)
    return file_sha256(dst / "best.pt")
