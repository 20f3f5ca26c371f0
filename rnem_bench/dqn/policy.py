"""Policies that play while the recorder records: ``random`` or ``dqn:PATH`` (epsilon-greedy).

This module imports neither torch nor ale-py: a random-policy recording never loads torch (a
spawned worker starts seconds sooner), and recipes parse policy specs without either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rnem_bench.errors import RnemBenchError
from rnem_bench.io import file_sha256  # noqa: F401  (its old home: re-exported)


class Policy(Protocol):
    n_actions: int

    def act(self, stack: np.ndarray, rng: np.random.Generator) -> int:
        """An action index for a (4, 84, 84) uint8 frame stack; randomness only from ``rng``."""


@dataclass
class RandomPolicy:
    n_actions: int

    def act(self, stack: np.ndarray, rng: np.random.Generator) -> int:
        return int(rng.integers(self.n_actions))


def parse_policy(spec: str) -> tuple[str, Path | None]:
    """``"random"`` -> ("random", None); ``"dqn:PATH"`` -> ("dqn", PATH)."""
    if spec == "random":
        return "random", None
    if spec.startswith("dqn:") and len(spec) > 4:
        return "dqn", Path(spec[4:]).expanduser()
    raise RnemBenchError(f"--policy must be 'random' or 'dqn:PATH', got '{spec}'")


def make_policy(spec: str, game: str, n_actions: int, epsilon: float = 0.05, device: str = "cpu") -> Policy:
    kind, path = parse_policy(spec)
    if kind == "random":
        return RandomPolicy(n_actions)
    from rnem_bench.dqn.checkpoint import load_network
    from rnem_bench.dqn.network import GreedyQPolicy

    return GreedyQPolicy(load_network(path, game, n_actions), epsilon, device)
