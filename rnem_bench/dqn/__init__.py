"""Atari side of the benchmark: ALE environments with the DQN conventions, a Nature-DQN trainer,
and the policies that play while ``rnem-bench generate invaders`` records.

    ale.py       environment construction and preprocessing (frame skip, max-pool, no-ops, sticky)
    frames.py    84x84 area resize and binarisation (NumPy)
    network.py   the Nature-DQN Q-network
    policy.py    random and epsilon-greedy DQN policies; checkpoint files, validated on load
    replay.py    the replay buffer
    trainer.py   DQN training with checkpoints and exact resume (``rnem-bench dqn train``)
    evaluate.py  mean episode return of a policy (``rnem-bench dqn eval``)
    commands.py  the click commands

The recorder itself is the generator ``rnem_bench.generators.invaders``. This file stays light
(no torch, no ale-py): recipes parse policy specs without importing either.
"""

from __future__ import annotations

from pathlib import Path

from rnem_bench.errors import RnemBenchError


def parse_policy(spec: str) -> tuple[str, Path | None]:
    """``"random"`` -> ("random", None); ``"dqn:PATH"`` -> ("dqn", PATH)."""
    if spec == "random":
        return "random", None
    if spec.startswith("dqn:") and len(spec) > 4:
        return "dqn", Path(spec[4:]).expanduser()
    raise RnemBenchError(f"--policy must be 'random' or 'dqn:PATH', got '{spec}'")
