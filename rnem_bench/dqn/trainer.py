"""A compact DQN (Mnih et al. 2015) to produce the policies the recorder plays with.

No pre-trained Atari weights can be downloaded here, so we train our own. The algorithm, per
agent step t (frame skip 4):

    a_t = random with probability eps(t), else argmax_a Q(s_t, a)      eps: 1 -> 0.01 over 250k steps
    store (o_t, a_t, clip(r_t, -1, 1), done_t) in the replay buffer    done_t: game over, or a life lost
    every 4 steps, on a batch of 32 uniform transitions:
        y = r + gamma * (1 - done) * Q_target(s', argmax_a' Q(s', a'))   (double DQN; plain: max_a' Q_target)
        loss = Huber(Q(s, a) - y)                                        Adam, gradient norm clipped at 10
    every 8000 steps: Q_target <- Q

Defaults follow Dopamine's DQN for Atari with Adam instead of RMSProp. Treating a lost life as
the end of an episode for the TD target (the episode itself continues) speeds up early learning.

Run directory::

    config.json   the DQNConfig
    log.jsonl     one line per finished episode: agent_step, episode, return, length, epsilon, loss, seconds
    train.pt      everything a resume needs, in one atomic file: networks, optimizer, counters, the
                  last 100 returns, RNG states, the ALE console state (so a resumed run continues
                  mid-episode exactly), the frame stack and the replay buffer (the bulk: 7 KB per
                  stored step)
    policy.pt     the latest policy, for ``--policy dqn:PATH`` and ``dqn eval``

On CPU a resumed run reproduces the uninterrupted one bit for bit; on a GPU up to the
nondeterminism of cuDNN kernels. Ctrl-C (SIGINT) or SIGTERM stops a run after the agent step in
flight and writes train.pt and policy.pt first (exit status 130 / 143), so ``--resume`` loses nothing.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from rnem_bench.dqn.ale import AtariGame, EnvConfig, FrameStack, dqn_frame
from rnem_bench.dqn.network import NatureDQN, torch_device
from rnem_bench.dqn.checkpoint import TRAIN_FORMAT, policy_dict
from rnem_bench.dqn.replay import ReplayBuffer
from rnem_bench.errors import RnemBenchError
from rnem_bench.signals import Interrupted, signal_name, stop_on_signals
from rnem_bench.io import atomic_torch_save, atomic_write_text, read_checkpoint, read_jsonl

CONFIG, LOG, TRAIN, POLICY = "config.json", "log.jsonl", "train.pt", "policy.pt"


@dataclass(frozen=True)
class DQNConfig:
    game: str = "SpaceInvaders"
    steps: int = 10_000_000             # agent steps in total (x frame_skip raw frames)
    seed: int = 0
    device: str = "auto"                # "auto": cuda when present
    # environment (the recorder's conventions, so the policy meets the dynamics it was trained on)
    frame_skip: int = 4
    noop_max: int = 30
    sticky_actions: float = 0.0
    max_episode_frames: int = 108_000
    # learning
    buffer_size: int = 200_000          # frames of replay (7 KB each; Nature: 1M)
    batch_size: int = 32
    lr: float = 1e-4
    adam_eps: float = 1.5e-4
    gamma: float = 0.99
    learning_starts: int = 20_000       # agent steps of experience before the first update
    train_every: int = 4                # agent steps per gradient step
    target_update: int = 8_000          # agent steps between target-network copies
    eps_start: float = 1.0
    eps_end: float = 0.01
    eps_decay_steps: int = 250_000
    double: bool = True
    life_loss_terminal: bool = True
    max_grad_norm: float = 10.0
    checkpoint_every: int = 100_000     # agent steps between checkpoints (and one at the end)

    def env(self) -> EnvConfig:
        return EnvConfig(self.game, self.frame_skip, self.noop_max, self.sticky_actions, self.max_episode_frames)

    def validate(self) -> None:
        self.env().validate()
        positive = ("steps", "buffer_size", "batch_size", "train_every", "target_update", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise RnemBenchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_starts < self.batch_size:
            raise RnemBenchError(f"learning_starts ({self.learning_starts}) must be >= batch_size ({self.batch_size})")
        if not (0 < self.gamma <= 1 and self.lr > 0 and 0 <= self.eps_end <= self.eps_start <= 1):
            raise RnemBenchError("need 0 < gamma <= 1, lr > 0 and 0 <= eps_end <= eps_start <= 1")

    def epsilon(self, step: int) -> float:
        frac = min(1.0, step / max(1, self.eps_decay_steps))
        return self.eps_start + frac * (self.eps_end - self.eps_start)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DQNConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise RnemBenchError(f"unknown DQN config field(s): {', '.join(sorted(unknown))}")
        return cls(**d)


class DQNTrainer:
    """Holds the whole training state; ``run()`` advances it to ``config.steps`` agent steps."""

    def __init__(self, config: DQNConfig, out: str | Path, progress: bool = True):
        config.validate()
        self.config, self.out, self.progress = config, Path(out), progress
        self.device = torch_device(config.device)
        torch.manual_seed(config.seed)
        self.game = AtariGame(config.env())
        n = self.game.n_actions
        self.online = NatureDQN(n).to(self.device)
        self.target = NatureDQN(n).to(self.device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.lr, eps=config.adam_eps)
        self.replay = ReplayBuffer(config.buffer_size, self.device)
        self.rng = np.random.default_rng(config.seed)                        # actions, no-op starts
        self.sample_gen = torch.Generator().manual_seed(config.seed)          # replay batches
        # counters and the episode in progress
        self.step = 0
        self.episode = 0
        self.t = 0                      # agent step within the episode
        self.episode_return = 0.0
        self.stack = FrameStack()
        self.stack.reset(dqn_frame(self.game.reset(self.rng)))
        self.lives = self.game.lives()
        self.losses: list[torch.Tensor] = []   # 0-d losses since the last finished episode (no device sync)
        self.recent: deque[float] = deque(maxlen=100)  # returns of the last 100 episodes
        self.seconds = 0.0                      # training wall time before this process's run()

    # ------------------------------------------------------------------------------ learning
    @torch.no_grad()
    def act(self, epsilon: float) -> int:
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.game.n_actions))
        q = self.online(torch.from_numpy(self.stack.frames).to(self.device).unsqueeze(0))
        return int(q.argmax(1).item())

    def update(self) -> torch.Tensor:
        """One gradient step; returns the loss as a 0-d tensor (read it lazily: no device sync)."""
        c = self.config
        b = self.replay.sample(c.batch_size, self.sample_gen)
        q = self.online(b["obs"]).gather(1, b["action"][:, None]).squeeze(1)          # Q(s, a)   (B,)
        with torch.no_grad():
            next_target = self.target(b["next_obs"])                                    # (B, A)
            if c.double:
                best = self.online(b["next_obs"]).argmax(1, keepdim=True)
                next_q = next_target.gather(1, best).squeeze(1)
            else:
                next_q = next_target.max(1).values
            y = b["reward"] + c.gamma * (1.0 - b["done"]) * next_q
        loss = F.smooth_l1_loss(q, y)                                                   # Huber, delta 1
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.online.parameters(), c.max_grad_norm)
        self.optimizer.step()
        return loss.detach()

    def _env_step(self, log) -> None:
        c = self.config
        epsilon = c.epsilon(self.step)
        action = self.act(epsilon)
        frame = self.stack.frames[-1]
        s = self.game.step(action, self.rng)
        life_lost = s.lives < self.lives
        done = s.terminated or (c.life_loss_terminal and life_lost)
        self.replay.add(torch.from_numpy(frame), action, float(np.sign(s.reward)), done, self.episode, self.t)
        self.episode_return += s.reward
        self.t += 1
        self.lives = s.lives
        if s.terminated or s.truncated:
            log({"agent_step": self.step + 1, "episode": self.episode, "return": self.episode_return,
                 "length": self.t, "epsilon": round(epsilon, 4),
                 "loss": float(torch.stack(self.losses).mean()) if self.losses else None})
            self.losses.clear()
            self.episode += 1
            self.t, self.episode_return = 0, 0.0
            self.stack.reset(dqn_frame(self.game.reset(self.rng)))
            self.lives = self.game.lives()
        else:
            self.stack.push(dqn_frame(s.screen))

    def run(self, max_seconds: float | None = None) -> dict[str, Any]:
        """Train until ``config.steps`` (or ``max_seconds``); checkpoints on the way and at the end.
        SIGINT or SIGTERM: finish the agent step, checkpoint, raise ``Interrupted`` (exit 130 / 143)."""
        c = self.config
        start, t0 = self.step, time.perf_counter()
        recent = self.recent
        log_file = open(self.out / LOG, "a")

        def log(entry: dict[str, Any]) -> None:
            entry["seconds"] = round(self.seconds + time.perf_counter() - t0, 1)
            recent.append(entry["return"])
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()

        bar = tqdm(total=c.steps, initial=self.step, desc=f"dqn {c.game}", unit="step", disable=not self.progress,
                   smoothing=0.05)
        stopped, saved_at = "steps", None
        # Inside the block a signal only sets stop.requested; it is read after each whole agent step.
        with stop_on_signals() as stop:
            try:
                while self.step < c.steps:
                    self._env_step(log)
                    self.step += 1
                    if self.step > c.learning_starts and self.step % c.train_every == 0:
                        self.losses.append(self.update())
                    if self.step % c.target_update == 0:
                        self.target.load_state_dict(self.online.state_dict())
                    if self.step % c.checkpoint_every == 0:
                        self.save(self.seconds + time.perf_counter() - t0)
                        saved_at = self.step
                    if self.step % 1000 == 0:
                        bar.update(self.step - bar.n)
                        if recent:
                            bar.set_postfix(ret100=f"{np.mean(recent):.1f}", eps=f"{c.epsilon(self.step):.3f}")
                    if stop.requested:
                        stopped = "signal"
                        break
                    if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                        stopped = "time"
                        break
            finally:
                bar.update(self.step - bar.n)
                bar.close()
                log_file.close()
            seconds = time.perf_counter() - t0
            if saved_at != self.step or stopped == "signal":  # after a signal, always files newer than it
                self.save(self.seconds + seconds)
        if stopped == "signal":
            raise Interrupted(stop.signum, f"stopped by {signal_name(stop.signum)} at agent step {self.step}; "
                                           f"saved {self.out / TRAIN} and {self.out / POLICY}")
        return {"agent_steps": self.step, "stopped": stopped, "episodes": self.episode, "seconds": round(seconds, 1),
                "steps_per_second": round((self.step - start) / max(seconds, 1e-9), 1),
                "mean_return_last_100": float(np.mean(recent)) if recent else None}

    # ---------------------------------------------------------------------------- checkpoints
    def save(self, seconds: float) -> None:
        c = self.config
        policy = policy_dict(self.online, c.game, self.step)
        ale_state, last_action = self.game.save_state()
        state = {
            "format": TRAIN_FORMAT, "version": 1, "config": json.dumps(asdict(c)), "policy": policy,
            "target": self.target.state_dict(), "optimizer": self.optimizer.state_dict(),
            "step": self.step, "episode": self.episode, "t": self.t, "episode_return": self.episode_return,
            "lives": self.lives, "stack": torch.from_numpy(self.stack.frames.copy()),
            "losses": torch.stack(self.losses).cpu() if self.losses else torch.zeros(0), "seconds": seconds,
            "recent": torch.tensor(list(self.recent), dtype=torch.float64),
            "rng": json.dumps(self.rng.bit_generator.state), "sample_gen": self.sample_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "ale_state": torch.frombuffer(bytearray(ale_state), dtype=torch.uint8), "ale_last_action": last_action,
            "replay": self.replay.state_dict(),
        }
        atomic_torch_save(self.out / TRAIN, state)
        atomic_torch_save(self.out / POLICY, policy)

    def load(self) -> None:
        state = read_checkpoint(self.out / TRAIN)
        if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
            raise RnemBenchError(f"{self.out / TRAIN} is not an rnem-bench DQN training checkpoint")
        self.online.load_state_dict(state["policy"]["state_dict"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.episode, self.t = int(state["step"]), int(state["episode"]), int(state["t"])
        self.episode_return, self.lives = float(state["episode_return"]), int(state["lives"])
        self.stack.frames[:] = state["stack"].numpy()
        self.losses = list(state["losses"].to(self.device).unbind())
        self.seconds = float(state["seconds"])
        self.recent.extend(state.get("recent", torch.zeros(0)).tolist())  # absent in older checkpoints
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.sample_gen.set_state(state["sample_gen"])
        torch.set_rng_state(state["torch_rng"])
        self.game.load_state(state["ale_state"].numpy().tobytes(), int(state["ale_last_action"]))
        self.replay.load_state_dict(state["replay"])
        _truncate_log(self.out / LOG, self.step)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["agent_step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def saved_config(out: str | Path) -> DQNConfig | None:
    """The config of the run in ``out``, or None when there is none."""
    path = Path(out) / CONFIG
    if not path.is_file():
        return None
    try:
        return DQNConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise RnemBenchError(f"cannot read {path}: {err}") from None


def remove_stale_temps(out: Path) -> None:
    """Temp files of atomic saves a killed run left behind (a train.pt one is as big as the replay)."""
    for name in (CONFIG, LOG, TRAIN, POLICY):
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def train_dqn(config: DQNConfig, out: str | Path, resume: bool = False, max_minutes: float | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a DQN in run directory ``out``; returns a summary dict."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RnemBenchError(f"--out {out} is a file, not a run directory")
    if (out / TRAIN).exists() and not resume:
        raise RnemBenchError(f"{out} already holds a DQN run; pass --resume to continue it or choose another --out")
    if resume and not (out / TRAIN).exists():
        raise RnemBenchError(f"nothing to resume: {out / TRAIN} does not exist")
    if resume:
        saved = saved_config(out)
        if saved is None:
            raise RnemBenchError(f"cannot resume: {out / CONFIG} is missing")
        # only the length of the run, the device and the checkpoint interval may change on resume
        free = ("steps", "device", "checkpoint_every")
        diff = [k for k, v in asdict(config).items() if k not in free and v != asdict(saved)[k]]
        if diff:
            raise RnemBenchError(f"--resume with settings that differ from the saved run: {', '.join(diff)}")
    # Built before the run dir exists: a bad config or device, or a missing ale-py, leaves nothing behind.
    trainer = DQNTrainer(config, out, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    if resume:
        trainer.load()
    elif (out / LOG).exists():
        (out / LOG).unlink()
    atomic_write_text(out / CONFIG, json.dumps(asdict(config), indent=2) + "\n")
    summary = trainer.run(max_seconds=None if max_minutes is None else max_minutes * 60)
    return summary


def read_log(out: str | Path) -> list[dict[str, Any]]:
    """The run's log.jsonl: one dict per finished episode."""
    return read_jsonl(Path(out) / LOG)
