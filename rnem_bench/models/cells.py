"""Recurrent updates of theta_k given the encoded input X and Upsilon_k(theta(t-1)) (eq. 4).

The state of one component is a flat vector (B, K, state_size) so that the N-EM core can treat
every cell alike (permute it over K, checkpoint it). ``cell.theta(state)`` is the part the
decoder and the interaction function read.
"""

from __future__ import annotations

import torch
from torch import nn


class SigmoidCell(nn.Module):
    """theta = sigma(W X + R Upsilon + b), eq. (4); 250 units in the paper."""

    def __init__(self, input_size: int, upsilon_size: int, hidden: int = 250):
        super().__init__()
        self.W = nn.Linear(input_size, hidden)
        self.R = nn.Linear(upsilon_size, hidden, bias=False)
        self.hidden = hidden
        self.state_size = hidden

    def theta(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def forward(self, x: torch.Tensor, upsilon: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.W(x) + self.R(upsilon))


class LSTMCell(nn.Module):
    """The LSTM baseline's update: gates from W X + R Upsilon + b; state is [h; c].

    With Upsilon = h this is the standard LSTM cell (``torch.nn.LSTMCell`` maths).
    """

    def __init__(self, input_size: int, upsilon_size: int, hidden: int = 250):
        super().__init__()
        self.W = nn.Linear(input_size, 4 * hidden)
        self.R = nn.Linear(upsilon_size, 4 * hidden, bias=False)
        self.hidden = hidden
        self.state_size = 2 * hidden

    def theta(self, state: torch.Tensor) -> torch.Tensor:
        return state[..., : self.hidden]

    def forward(self, x: torch.Tensor, upsilon: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        c = state[..., self.hidden :]
        i, f, g, o = (self.W(x) + self.R(upsilon)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=-1)


CELLS = {"sigmoid": SigmoidCell, "lstm": LSTMCell}
