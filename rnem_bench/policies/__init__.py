"""Game policies shipped with the package: weights only, fp16, pinned by sha256.

``spaceinvaders-dqn.pt`` is the Nature-DQN trained here on the CPU (``rnem-bench dqn train``; its
settings, learning curve and evaluation are in docs/invaders.md). The canonical
``invaders`` task records with it at epsilon 0.05; its hash is part of the task's recipe, so the
task's fingerprint pins these exact weights. Load it with ``rnem_bench.dqn.checkpoint.load_network``
(``weights_only=True``; fp16 weights go into the fp32 network).
"""

from __future__ import annotations

from pathlib import Path

from rnem_bench.io import check_pinned

ROOT = Path(__file__).resolve().parent

SPACEINVADERS_DQN = ROOT / "spaceinvaders-dqn.pt"
SPACEINVADERS_DQN_SHA256 = "fc3055630413f904050946edc4958c2bd9e4e49c392c61a25c3658f6ce4e324a"


def shipped_policy(path: Path = SPACEINVADERS_DQN, sha256: str = SPACEINVADERS_DQN_SHA256) -> Path:
    """The shipped policy file, after checking it against its pinned hash."""
    return check_pinned(path, sha256, f"the shipped policy {path} is missing (a damaged install?)")
