"""Space Invaders rollouts recorded from the Arcade Learning Environment (task ``invaders``).

Paper, appendix A.2: a DQN plays Space Invaders; the DQN sees a stack of four frames and every
first frame of each stack is recorded; frames are preprocessed as in Mnih et al., 84x84, then
thresholded at 0.0001; sequences of 25 steps; the agent's action at each step is stored.

We read "every first frame of each stack" as: each agent step's preprocessed frame is recorded
once (it enters the stack as the newest frame and leaves it four steps later as the first), so
consecutive recorded frames are one agent step (``frame_skip`` = 4 raw frames) apart. Frame t
of a sequence is that step's max-pooled grayscale screen, area-resized to ``image_size`` and
binarised; ``actions[t]`` is the action the policy chose after seeing frame t.

Deviation from the paper: "preprocessed as in Mnih et al." cites the 2013 DQN paper, which resized
to 110x84, cropped the 84x84 play area (dropping the score) and used frame skip 3 for Space
Invaders. We follow the 2015 Nature-DQN conventions instead (whole screen area-resized to 84x84,
frame skip 4, max of the last two raw frames), as today's Atari wrappers and our DQN do, so the
recorded frames are the ones the policy was trained on; the score digits stay in the frame.

Chunks: a chunk task (split, start, stop) records its own episodes, episode k seeded from
(seed, split, start, k), until it holds ``stop - start`` sequences. Each episode is cut into
windows of ``steps + 1`` frames that never cross its end, back to back (``overlap``: every frame
starts a window); the episode stops being played as soon as the chunk is full. So a chunk's
bytes depend only on its own arguments, whatever the worker count. ``episode`` ids are unique
within a split (the chunk's start plus the count of episodes it took sequences from) and
``step_offset`` is the window's first agent step within its episode.

Policies: ``random``, or ``dqn:PATH`` (``rnem_bench.dqn``), epsilon-greedy with ``epsilon``. A
recipe with a DQN policy records the checkpoint's sha256, so the fingerprint pins the weights;
recording refuses a file whose hash has changed. gymnasium and ale-py (``rnem-bench[atari]``) are
imported only when recording: parameters and fingerprints work without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rnem_bench.dataset_format import SPLITS
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators.chunks import empty_chunk

MAX_STEPS = 1000


@dataclass(frozen=True)
class Params:
    game: str = "SpaceInvaders"         # gymnasium's spelling; any ROM that ships with ale-py
    steps: int = 25                     # model steps; steps + 1 frames are stored
    image_size: int = 84
    policy: str = "random"              # "random" or "dqn:PATH"
    policy_sha256: str = ""             # sha256 of the DQN checkpoint (required for dqn:PATH)
    epsilon: float = 0.05               # chance of a random action (DQN policies)
    frame_skip: int = 4
    noop_max: int = 30
    sticky_actions: float = 0.0
    threshold: float = 0.0001           # binarisation threshold on the [0, 1] grayscale image
    overlap: bool = False               # True: a window starts at every frame (sequences overlap)
    max_episode_frames: int = 108_000   # raw frames before an episode is cut (ALE's usual cap)

    @property
    def frames(self) -> int:
        return self.steps + 1

    def env(self):
        from rnem_bench.dqn.ale import EnvConfig

        return EnvConfig(self.game, self.frame_skip, self.noop_max, self.sticky_actions, self.max_episode_frames)

    def validate(self) -> None:
        from rnem_bench.dqn.policy import parse_policy

        if not 1 <= self.steps <= MAX_STEPS:
            raise RnemBenchError(f"steps must be in 1..{MAX_STEPS}, got {self.steps}")
        if not 8 <= self.image_size <= 210:
            raise RnemBenchError(f"image size must be in 8..210 (the screen is 210x160), got {self.image_size}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise RnemBenchError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.policy == "random" and self.epsilon != Params.epsilon:
            # random play ignores epsilon: another value would change the fingerprint, not the data
            raise RnemBenchError(f"--epsilon applies to DQN policies only; leave it at {Params.epsilon} with --policy random")
        if not 0.0 <= self.threshold < 1.0:
            raise RnemBenchError(f"threshold must be in [0, 1), got {self.threshold}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.game):
            raise RnemBenchError(f"game name '{self.game}' is not a valid ALE game name")
        self.env().validate()
        kind, _ = parse_policy(self.policy)
        if kind == "dqn" and not re.fullmatch(r"[0-9a-f]{64}", self.policy_sha256):
            raise RnemBenchError("policy_sha256 must be the checkpoint's sha256 (64 hex digits): build params with pin_policy()")
        if kind == "random" and self.policy_sha256:
            raise RnemBenchError("policy_sha256 is set but the policy is random")


def fingerprint_params(params: dict) -> dict:
    """Recipe params as fingerprinted: a DQN policy counts by its sha256, not by its file path."""
    if str(params.get("policy", "")).startswith("dqn:"):
        return {**params, "policy": "dqn"}
    return params


def pin_policy(params: Params) -> Params:
    """``params`` with an absolute checkpoint path and its sha256 filled in (random: unchanged)."""
    from dataclasses import replace

    from rnem_bench.dqn.checkpoint import load_policy_record
    from rnem_bench.dqn.policy import parse_policy
    from rnem_bench.io import file_sha256

    kind, path = parse_policy(params.policy)
    if kind == "random":
        return params
    load_policy_record(path)  # refuse a foreign or malformed file before hashing it into a recipe
    return replace(params, policy=f"dqn:{path.resolve()}", policy_sha256=file_sha256(path))


def check_pinned_policy(params: Params) -> None:
    """A DQN policy file must still be the one whose hash the recipe holds."""
    from rnem_bench.dqn.policy import parse_policy
    from rnem_bench.io import check_pinned

    kind, path = parse_policy(params.policy)
    if kind == "dqn":
        check_pinned(path, params.policy_sha256, f"DQN checkpoint not found: {path}",
                     f"{path} changed since the recipe was made (sha256 differs); it no longer pins these weights")


def layout(params: Params) -> dict[str, tuple[int, ...]]:
    t, s = params.frames, params.image_size
    return {"features": (t, s, s), "actions": (t,), "episode": (), "step_offset": ()}


def attrs(params: Params) -> dict[str, Any]:
    """Root attributes; building the recorder here fails fast (missing ale-py, unknown game, bad policy)."""
    from rnem_bench.dqn.ale import require_ale

    ale_py = require_ale()
    import gymnasium

    check_pinned_policy(params)  # every run, even when this process cached a recorder earlier
    recorder = _recorder(params)
    return {
        "has_groups": False,
        "n_actions": recorder.game.n_actions,
        "action_names": list(recorder.game.action_names),
        "ale_py_version": ale_py.__version__,
        "gymnasium_version": gymnasium.__version__,
    }


# ------------------------------------------------------------------------------------- recording
class Recorder:
    """One game and one policy; plays episodes and returns their binary frames and actions."""

    def __init__(self, params: Params, game=None, policy=None):
        from rnem_bench.dqn.ale import AtariGame, FrameStack
        from rnem_bench.dqn.policy import RandomPolicy, make_policy

        self.params = params
        self.game = game if game is not None else AtariGame(params.env())
        if policy is None:
            check_pinned_policy(params)
            policy = make_policy(params.policy, params.game, self.game.n_actions, params.epsilon)
        self.policy = policy
        self.needs_stack = not isinstance(policy, RandomPolicy)  # the random policy never looks
        self.stack = FrameStack()

    def play(self, rng: np.random.Generator, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """One episode, stopped after ``max_frames`` recorded frames: (F, S, S) uint8 0/1 and (F,) actions."""
        from rnem_bench.dqn.ale import SCREEN_SIZE
        from rnem_bench.dqn.frames import binarize, resize_area, to_uint8

        p = self.params
        frames, actions = [], []
        screen = self.game.reset(rng)
        while True:
            image = resize_area(screen, p.image_size)
            frames.append(binarize(image, p.threshold))
            if self.needs_stack:
                dqn_in = image if p.image_size == SCREEN_SIZE else resize_area(screen, SCREEN_SIZE)
                (self.stack.reset if len(frames) == 1 else self.stack.push)(to_uint8(dqn_in))
            action = self.policy.act(self.stack.frames, rng)
            actions.append(action)
            if len(frames) >= max_frames:
                break
            step = self.game.step(action, rng)
            if step.terminated or step.truncated:
                break  # the final screen has no action after it: not recorded
            screen = step.screen
        return np.stack(frames), np.array(actions, dtype=np.int16)


@lru_cache(maxsize=2)
def _recorder(params: Params) -> Recorder:
    """One recorder per process and recipe (the console and the network are built once)."""
    return Recorder(params)


def window_starts(n_frames: int, length: int, overlap: bool) -> list[int]:
    """First frames of the windows of ``length`` frames cut from an episode of ``n_frames``."""
    stride = 1 if overlap else length
    return list(range(0, n_frames - length + 1, stride))


def record_chunk(recorder: Recorder, seed: int, split: str, start: int, stop: int,
                 out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Sequences ``start:stop`` of ``split`` (see the module docstring for how episodes are cut)."""
    p = recorder.params
    n, length = stop - start, p.frames
    out = empty_chunk(layout(p), n, out)  # every row of every array is written below
    have, used, k, barren = 0, 0, 0, 0
    while have < n:
        rng = np.random.default_rng([seed, SPLITS.index(split), start, k])
        k += 1
        left = n - have
        frames, actions = recorder.play(rng, max_frames=left + length - 1 if p.overlap else left * length)
        starts = window_starts(len(frames), length, p.overlap)[:left]
        if not starts:
            barren += 1
            if barren >= 20:
                raise RnemBenchError(
                    f"{barren} episodes of {p.game} in a row ended before {length} frames; lower --steps"
                )
            continue
        barren = 0
        for offset in starts:
            out["features"][have] = frames[offset : offset + length]
            out["actions"][have] = actions[offset : offset + length]
            out["episode"][have] = start + used
            out["step_offset"][have] = offset
            have += 1
        used += 1
    return out


def make_chunk(params: Params, seed: int, split: str, start: int, stop: int,
               out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    if params.policy == "random":  # no network: torch is never imported
        return record_chunk(_recorder(params), seed, split, start, stop, out)
    import torch

    # One intra-op thread for the DQN's forward pass: worker processes already fill the cores,
    # and a fixed thread count keeps the floating-point reductions (so the argmax) reproducible.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return record_chunk(_recorder(params), seed, split, start, stop, out)
    finally:
        torch.set_num_threads(threads)
