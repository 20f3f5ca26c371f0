"""Arcade Learning Environment games with the DQN conventions (Mnih et al. 2015; Machado et al. 2018).

One agent step repeats the chosen action for ``frame_skip`` raw frames (4), sums the rewards and
returns the pixel-wise max of the last two raw grayscale screens (Atari sprites flicker: some are
drawn only on every other frame). An episode starts with 1..``noop_max`` raw no-op frames so that
start states differ; ``sticky_actions`` is the chance that the console repeats the previous action
on a raw frame (0 is the classic DQN setting, 0.25 the ``ALE/...-v5`` default). The ROMs ship
with ale-py: nothing is downloaded at run time.

All randomness comes from the caller's NumPy generator: every episode starts from the console
state saved right after the ROM was loaded, and sticky actions are drawn here (the emulator
itself is deterministic when its own sticky actions are off). So an episode depends only on the
generator it is given, not on what the process played before, and no ROM is reloaded per
episode (a reload costs ~0.1 s, more than a hundred agent steps).

gymnasium and ale-py are the optional extra ``rnem-bench[atari]``: they are imported here, inside
functions, so the rest of the package (recipes, fingerprints, the CLI's help) works without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from rnem_bench.dqn.frames import resize_area, to_uint8
from rnem_bench.errors import RnemBenchError

SCREEN_SIZE = 84        # what the Nature-DQN network sees
FRAME_STACK = 4         # ... as a stack of the last four agent-step frames


def require_ale() -> ModuleType:
    """The ``ale_py`` module, or a one-line error that says how to install it."""
    try:
        import gymnasium  # noqa: F401  (ale_py.env builds on it)
        import ale_py
    except ImportError as err:
        raise RnemBenchError(
            f"the Atari recorder needs gymnasium and ale-py ({err.name} is missing): pip install rnem-bench[atari]"
        ) from None
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on every environment
    return ale_py


def rom_id(game: str) -> str:
    """``"SpaceInvaders"`` (gymnasium's spelling) -> ``"space_invaders"`` (ale-py's ROM id), checked."""
    ale_py = require_ale()
    rom = re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower() if game != game.lower() else game
    known = ale_py.roms.get_all_rom_ids()
    if rom not in known:
        raise RnemBenchError(f"unknown ALE game '{game}' (e.g. SpaceInvaders, Breakout, Pong; {len(known)} ROMs ship with ale-py)")
    return rom


@dataclass(frozen=True)
class EnvConfig:
    game: str = "SpaceInvaders"
    frame_skip: int = 4                 # raw frames per agent step
    noop_max: int = 30                  # 1..noop_max raw no-op frames at the start of an episode
    sticky_actions: float = 0.0         # chance per raw frame that the previous action repeats
    max_episode_frames: int = 108_000   # raw frames (30 minutes of play): the usual ALE cap

    def validate(self) -> None:
        if self.frame_skip < 1:
            raise RnemBenchError(f"frame_skip must be >= 1, got {self.frame_skip}")
        if self.noop_max < 0:
            raise RnemBenchError(f"noop_max must be >= 0, got {self.noop_max}")
        if not 0.0 <= self.sticky_actions < 1.0:
            raise RnemBenchError(f"sticky_actions must be in [0, 1), got {self.sticky_actions}")
        if self.max_episode_frames < 1:
            raise RnemBenchError(f"max_episode_frames must be >= 1, got {self.max_episode_frames}")


@dataclass
class Step:
    screen: np.ndarray      # (210, 160) uint8 grayscale, max of the last two raw frames
    reward: float           # sum over the skipped frames (unclipped)
    terminated: bool        # game over
    truncated: bool         # hit max_episode_frames
    lives: int


class AtariGame:
    """One ALE game driven with the DQN conventions; actions are indices into the minimal action set."""

    def __init__(self, config: EnvConfig):
        config.validate()
        self.config = config
        require_ale()
        from ale_py.env import AtariEnv

        # gymnasium's ALE/<Game>-v5 environment, stepped one raw frame at a time: the frame skip
        # and max-pooling happen here, where we can read the two screens we pool.
        self._env = AtariEnv(
            game=rom_id(config.game), obs_type="grayscale", frameskip=1,
            repeat_action_probability=0.0, full_action_space=False,
            max_num_frames_per_episode=config.max_episode_frames,
        )
        self._env.reset(seed=0)
        self.ale = self._env.ale
        self._boot = self.ale.cloneState()
        self._last = 0  # index of the action the console executed last (for sticky actions)
        self.actions = list(self.ale.getMinimalActionSet())
        self.action_names = self._env.get_action_meanings()
        h, w = self.ale.getScreenDims()
        self._screens = np.zeros((2, h, w), dtype=np.uint8)

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        """Start an episode from the boot state, with random no-ops from ``rng``; returns its first screen."""
        self.ale.restoreState(self._boot)
        self.ale.reset_game()
        self._last = 0
        noops = int(rng.integers(1, self.config.noop_max + 1)) if self.config.noop_max > 0 else 0
        for _ in range(noops):
            self.ale.act(self.actions[0])  # NOOP is always first in the minimal action set
            if self.ale.game_over():
                self.ale.reset_game()
        return self.ale.getScreenGrayscale()

    def step(self, action: int, rng: np.random.Generator) -> Step:
        """One agent step; ``rng`` draws the sticky-action repeats (not touched when they are off)."""
        ale, skip, p = self.ale, self.config.frame_skip, self.config.sticky_actions
        sticky = rng.random(skip) < p if p > 0 else None
        first, last = self._screens
        reward = 0.0
        for i in range(skip):
            if sticky is None or not sticky[i]:
                self._last = action
            reward += ale.act(self.actions[self._last])
            if ale.game_over():
                if i < skip - 1:                  # ended early: no pair of final screens to pool
                    first[:] = 0
                ale.getScreenGrayscale(last)
                break
            if i == skip - 2:
                ale.getScreenGrayscale(first)
            elif i == skip - 1:
                ale.getScreenGrayscale(last)
        if skip == 1:
            first[:] = 0
        return Step(
            screen=np.maximum(first, last),
            reward=reward,
            terminated=ale.game_over(with_truncation=False),
            truncated=ale.game_truncated(),
            lives=ale.lives(),
        )

    def lives(self) -> int:
        return self.ale.lives()

    # Exact save/restore so that a resumed DQN run continues mid-episode.
    def save_state(self) -> tuple[bytes, int]:
        return self.ale.cloneState().__getstate__(), int(self._last)

    def load_state(self, blob: bytes, last_action: int) -> None:
        ale_py = require_ale()
        state = ale_py.ALEState.__new__(ale_py.ALEState)
        state.__setstate__(blob)
        self.ale.restoreState(state)
        self._last = last_action


def dqn_frame(screen: np.ndarray) -> np.ndarray:
    """A raw (210, 160) screen -> the (84, 84) uint8 grayscale frame the DQN sees."""
    return to_uint8(resize_area(screen, SCREEN_SIZE))


class FrameStack:
    """The last ``FRAME_STACK`` DQN frames, oldest first; zeros before the episode's first frame."""

    def __init__(self) -> None:
        self.frames = np.zeros((FRAME_STACK, SCREEN_SIZE, SCREEN_SIZE), dtype=np.uint8)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames[:] = 0
        self.frames[-1] = frame
        return self.frames

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.frames[:-1] = self.frames[1:]
        self.frames[-1] = frame
        return self.frames
