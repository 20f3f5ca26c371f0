"""Experience replay that stores each frame once and rebuilds 4-frame stacks when sampling.

Slot i holds one agent step of one episode: the newest frame o_t of the stack the agent acted on,
the action a_t, the clipped reward r_t, whether a_t ended the episode (for the TD target), the
episode's id and t itself. A stack is frames (t-3 .. t) of the same episode, zeros before the
episode's first frame (as the agent saw it). The next stack of slot i is the stack of slot i + 1.

Checking "same episode and the expected t" on every frame of a stack makes the circular buffer
safe without special cases: a slot whose history was overwritten, whose successor is not yet
written, or whose episode was cut by a time limit is simply not sampled.

Storage is torch tensors on any device: on a GPU the whole buffer lives in GPU memory and a batch
never crosses the bus (1M frames are 7 GB).
"""

from __future__ import annotations

from typing import Any

import torch

from rnem_bench.dqn.ale import FRAME_STACK, SCREEN_SIZE
from rnem_bench.errors import RnemBenchError


class ReplayBuffer:
    def __init__(self, capacity: int, device: str | torch.device = "cpu"):
        if capacity < FRAME_STACK + 1:
            raise RnemBenchError(f"replay capacity must be > {FRAME_STACK}, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)
        kw = {"device": self.device}
        self.frames = torch.zeros(capacity, SCREEN_SIZE, SCREEN_SIZE, dtype=torch.uint8, **kw)
        self.actions = torch.zeros(capacity, dtype=torch.int64, **kw)
        self.rewards = torch.zeros(capacity, dtype=torch.float32, **kw)
        self.dones = torch.zeros(capacity, dtype=torch.bool, **kw)
        self.episode = torch.full((capacity,), -1, dtype=torch.int64, **kw)
        self.t = torch.full((capacity,), -1, dtype=torch.int64, **kw)
        self.pos = 0     # next slot to write
        self.size = 0    # filled slots
        self._back = torch.arange(FRAME_STACK - 1, -1, -1, device=self.device)  # 3, 2, 1, 0 steps back

    def __len__(self) -> int:
        return self.size

    def add(self, frame: torch.Tensor, action: int, reward: float, done: bool, episode: int, t: int) -> None:
        i = self.pos
        self.frames[i] = frame.to(self.device) if isinstance(frame, torch.Tensor) else torch.as_tensor(frame, device=self.device)
        self.actions[i], self.rewards[i], self.dones[i] = action, reward, done
        self.episode[i], self.t[i] = episode, t
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    # --------------------------------------------------------------------------------- sampling
    def _stack(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) slots -> their (B, 4, 84, 84) stacks and whether each stack's history is intact."""
        j = (idx[:, None] - self._back) % self.capacity                     # (B, 4) slots t-3 .. t
        want_t = self.t[idx][:, None] - self._back                           # (B, 4) expected t
        same = (self.episode[j] == self.episode[idx][:, None]) & (self.t[j] == want_t)
        intact = (same | (want_t < 0)).all(1)                               # missing only before t=0
        return self.frames[j] * same[:, :, None, None], intact

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A uniform batch of valid transitions (obs, action, reward, next_obs, done) on the buffer's device.

        ``generator`` is a CPU generator: the draw is the same on every device (resumable runs).
        """
        if self.size < FRAME_STACK + 1:
            raise RnemBenchError("replay buffer holds too few steps to sample")
        chosen: list[torch.Tensor] = []
        have = 0
        for _ in range(100):
            cand = torch.randint(0, self.size, (2 * batch_size,), generator=generator).to(self.device)
            nxt = (cand + 1) % self.capacity
            has_next = (self.episode[nxt] == self.episode[cand]) & (self.t[nxt] == self.t[cand] + 1)
            _, intact = self._stack(cand)
            ok = cand[intact & (self.dones[cand] | has_next) & (self.t[cand] >= 0)]
            chosen.append(ok)
            have += len(ok)
            if have >= batch_size:
                break
        else:
            raise RnemBenchError("replay buffer has too few valid transitions to sample a batch")
        idx = torch.cat(chosen)[:batch_size]
        obs, _ = self._stack(idx)
        next_obs, _ = self._stack((idx + 1) % self.capacity)
        return {"obs": obs, "action": self.actions[idx], "reward": self.rewards[idx],
                "next_obs": next_obs, "done": self.dones[idx].float()}

    # ----------------------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        n = self.size
        # Copies, not views: torch.save writes a view's whole storage, the full capacity (1.4 GB).
        arrays = {k: getattr(self, k)[:n].to("cpu", copy=True) for k in ("frames", "actions", "rewards", "dones", "episode", "t")}
        return {"capacity": self.capacity, "pos": self.pos, "size": n, **arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise RnemBenchError(f"saved replay buffer has capacity {state['capacity']}, this run {self.capacity}")
        n = int(state["size"])
        for k in ("frames", "actions", "rewards", "dones", "episode", "t"):
            getattr(self, k)[:n] = state[k].to(self.device)
        self.pos, self.size = int(state["pos"]), n
