"""Play whole episodes with a policy and report their returns (``rnem-bench dqn eval``).

Protocol of the DQN papers: epsilon 0.05, no-op starts, unclipped game score, episodes capped at
``max_episode_frames`` raw frames. Episode i draws its randomness from (seed, i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnem_bench.dqn.ale import AtariGame, EnvConfig, FrameStack, dqn_frame
from rnem_bench.dqn.policy import Policy


@dataclass(frozen=True)
class EpisodeResult:
    score: float        # sum of unclipped rewards
    steps: int          # agent steps


def play_episode(game: AtariGame, policy: Policy, rng: np.random.Generator) -> EpisodeResult:
    stack = FrameStack()
    stack.reset(dqn_frame(game.reset(rng)))
    score, steps = 0.0, 0
    while True:
        step = game.step(policy.act(stack.frames, rng), rng)
        score += step.reward
        steps += 1
        if step.terminated or step.truncated:
            return EpisodeResult(score, steps)
        stack.push(dqn_frame(step.screen))


def evaluate_policy(policy: Policy, env: EnvConfig, episodes: int, seed: int = 0, game: AtariGame | None = None) -> list[EpisodeResult]:
    game = game or AtariGame(env)
    results = []
    for i in range(episodes):
        results.append(play_episode(game, policy, np.random.default_rng([seed, i])))
    return results


def summarize(results: list[EpisodeResult]) -> dict[str, float]:
    scores = np.array([r.score for r in results], dtype=np.float64)
    return {"episodes": len(results), "mean": float(scores.mean()), "std": float(scores.std()),
            "min": float(scores.min()), "max": float(scores.max()),
            "mean_steps": float(np.mean([r.steps for r in results]))}
