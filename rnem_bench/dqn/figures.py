"""The learning curve of a ``dqn train`` run, drawn from its log.jsonl (one line per episode)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnem_bench.errors import RnemBenchError


def read_episodes(rundir: str | Path) -> list[dict]:
    path = Path(rundir) / "log.jsonl"
    if not path.is_file():
        raise RnemBenchError(f"no training log at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "return" in r and "agent_step" in r]
    if not rows:
        raise RnemBenchError(f"{path} holds no finished episode")
    return rows


def save_learning_curve(rundir: str | Path, out: str | Path, window: int = 50,
                        random_mean: float | None = None) -> Path:
    """Episode returns against raw frames (agent steps x 4): each episode as a dot, the mean of
    the last ``window`` episodes as a line, epsilon on a second axis, and the random policy's
    mean return as a dashed line when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_episodes(rundir)
    frames = np.array([r["agent_step"] for r in rows]) * 4 / 1e6
    returns = np.array([r["return"] for r in rows], dtype=float)
    smooth = np.array([returns[max(0, i - window + 1): i + 1].mean() for i in range(len(returns))])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(frames, returns, s=4, alpha=0.3, color="tab:blue", label="training episode score (epsilon-greedy)")
    ax.plot(frames, smooth, color="tab:blue", label=f"mean of last {window}")
    if random_mean is not None:
        ax.axhline(random_mean, color="gray", ls="--", label=f"random policy ({random_mean:.0f})")
    ax.set_xlabel("raw frames (millions)")
    ax.set_ylabel("game score")
    if "epsilon" in rows[0]:
        eps = ax.twinx()
        eps.plot(frames, [r["epsilon"] for r in rows], color="tab:orange", lw=1, alpha=0.7)
        eps.set_ylabel("epsilon", color="tab:orange")
        eps.set_ylim(0, 1.05)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"DQN training: {Path(rundir).name}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
