"""Recurrent updates of theta_k given the encoded input X and Upsilon_k(theta(t-1)) (eq. 4).

The state of one component is a flat vector (B, K, state_size) so that the N-EM core can treat
every cell alike (permute it over K, checkpoint it). ``cell.theta(state)`` is the part the
interaction function reads; ``cell(X, Upsilon, state)`` returns the new state and the output
the decoder reads.
"""

from __future__ import annotations

import torch
from torch import nn


class SigmoidCell(nn.Module):
    """theta = sigma(W X + R Upsilon + b), eq. (4); 250 units in the paper.

    "Layer norm on the output" as in the original code: the decoder reads sigma(LN(pre)), the
    recurrent state stays sigma(pre) (no layer norm on the recurrent connection, appendix A).
    """

    def __init__(self, input_size: int, upsilon_size: int, hidden: int = 250):
        super().__init__()
        self.W = nn.Linear(input_size, hidden)
        self.R = nn.Linear(upsilon_size, hidden, bias=False)
        self.norm = nn.LayerNorm(hidden)
        self.hidden = hidden
        self.state_size = hidden

    def theta(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def forward(self, x: torch.Tensor, upsilon: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.W(x) + self.R(upsilon)
        return torch.sigmoid(pre), torch.sigmoid(self.norm(pre))


class LSTMCell(nn.Module):
    """The LSTM baseline: a layer-normalised LSTM (the original used TensorFlow's
    ``LayerNormBasicLSTMCell``): each gate's pre-activation and the new cell are layer-normalised,
    forget bias 1. Gates from W X + R Upsilon + b; the state is [h; c] and the output is h.
    """

    def __init__(self, input_size: int, upsilon_size: int, hidden: int = 250, forget_bias: float = 1.0):
        super().__init__()
        self.W = nn.Linear(input_size, 4 * hidden)
        self.R = nn.Linear(upsilon_size, 4 * hidden, bias=False)
        self.gate_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(4))
        self.cell_norm = nn.LayerNorm(hidden)
        self.forget_bias = forget_bias
        self.hidden = hidden
        self.state_size = 2 * hidden

    def theta(self, state: torch.Tensor) -> torch.Tensor:
        return state[..., : self.hidden]

    def forward(self, x: torch.Tensor, upsilon: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = state[..., self.hidden :]
        gates = (self.W(x) + self.R(upsilon)).chunk(4, dim=-1)
        i, g, f, o = (norm(gate) for norm, gate in zip(self.gate_norms, gates))
        c = self.cell_norm(torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g))
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=-1), h


CELLS = {"sigmoid": SigmoidCell, "lstm": LSTMCell}
