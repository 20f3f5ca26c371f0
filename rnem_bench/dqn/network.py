"""The Nature-DQN Q-network (Mnih et al. 2015, "Human-level control through deep RL", Methods).

    input   (B, 4, 84, 84) uint8: the last four preprocessed frames, scaled to [0, 1]
    conv1   32 filters 8x8 stride 4, ReLU   -> (B, 32, 20, 20)
    conv2   64 filters 4x4 stride 2, ReLU   -> (B, 64, 9, 9)
    conv3   64 filters 3x3 stride 1, ReLU   -> (B, 64, 7, 7)
    fc      512 units, ReLU                 (3136 -> 512)
    out     one Q-value per action          (512 -> n_actions)

``GreedyQPolicy`` plays with it: epsilon-greedy on its Q-values. ``torch_device`` resolves
``--device`` for ``dqn train`` and ``dqn eval``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnem_bench.dqn.ale import FRAME_STACK, SCREEN_SIZE


def torch_device(name: str) -> torch.device:
    """``--device`` as a torch.device, by the rules ``rnem-bench run`` uses; unknown or absent: one line."""
    from rnem_bench.device import resolve_device

    return torch.device(resolve_device(name))


class NatureDQN(nn.Module):
    def __init__(self, n_actions: int):
        super().__init__()
        self.n_actions = n_actions
        self.conv1 = nn.Conv2d(FRAME_STACK, 32, kernel_size=8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3, stride=1)
        side = ((SCREEN_SIZE - 8) // 4 + 1 - 4) // 2 + 1 - 2   # 84 -> 20 -> 9 -> 7
        self.fc = nn.Linear(64 * side * side, 512)
        self.out = nn.Linear(512, n_actions)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 4, 84, 84) uint8 (or float 0..255) -> (B, n_actions) Q-values."""
        x = frames.float() / 255.0
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.fc(x.flatten(1)))
        return self.out(x)


class GreedyQPolicy:
    """Epsilon-greedy on a Q-network's values (epsilon 0.05: the DQN papers' evaluation setting)."""

    def __init__(self, net: NatureDQN, epsilon: float = 0.05, device: str | torch.device = "cpu"):
        self.net = net.to(device).eval()
        self.n_actions = net.n_actions
        self.epsilon = epsilon
        self.device = torch.device(device)

    @torch.no_grad()
    def act(self, stack: np.ndarray, rng: np.random.Generator) -> int:
        if rng.random() < self.epsilon:
            return int(rng.integers(self.n_actions))
        q = self.net(torch.from_numpy(stack).to(self.device).unsqueeze(0))
        return int(q.argmax(1).item())
