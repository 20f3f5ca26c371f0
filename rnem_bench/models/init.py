"""Parameter initialisation: the original code's (the default) or PyTorch's (for comparison).

The original TensorFlow code built every dense and convolutional layer with TF-slim's defaults:
glorot-uniform weights, U(+-sqrt(6 / (fan_in + fan_out))), and zero biases; layer norms start at
gain 1 and shift 0. PyTorch's defaults differ (weights U(+-1/sqrt(fan_in)), random biases), which
makes the recurrent pre-activations, the decoder's last logits and the attention output about half
as spread, and puts a random bias before every layer norm. Where training starts on the symmetric
plateau (all K components alike), that difference decides whether and when a run leaves it.

Fan counts follow TensorFlow's: a conv kernel's fan_in is kh * kw * c_in and its fan_out
kh * kw * c_out (``nn.init.xavier_uniform_`` counts the same). The recurrent update of the
original is *one* dense layer over [X; Upsilon] (R-NEM: ``fully_connected([theta^, E, X])``;
RNN-EM/RNN: ``BasicRNNCell`` over [X; theta]; LSTM: ``LayerNormBasicLSTMCell`` over [X; h], 4 x
250 outputs, no bias): ours splits it into ``W`` (on X) and ``R`` (on Upsilon), so both halves
are drawn with the bound of the joint matrix. The LSTM's forget bias of 1 is added in its forward
pass, as TensorFlow's cell does, so its gate biases start at zero like every other bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("original", "pytorch")


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """Half-width of TF's glorot-uniform distribution."""
    return math.sqrt(6.0 / (fan_in + fan_out))


@torch.no_grad()
def original_init_(model: nn.Module) -> None:
    """Re-initialise ``model`` in place as TF-slim did: glorot-uniform weights, zero biases, norms 1/0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)):
            # Embedding == fc on the one-hot action: (n_actions, size) has the same fans either way
            nn.init.xavier_uniform_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    cell = getattr(model, "cell", None)
    if cell is not None:  # W and R are the two halves of one dense layer over [X; Upsilon]
        bound = glorot_bound(cell.W.in_features + cell.R.in_features, cell.W.out_features)
        for w in (cell.W.weight, cell.R.weight):
            w.uniform_(-bound, bound)


def initialise_(model: nn.Module, scheme: str) -> None:
    """Apply ``scheme`` ("original": TF-slim's, as the paper's code; "pytorch": leave PyTorch's)."""
    if scheme == "original":
        original_init_(model)
    elif scheme != "pytorch":
        raise ValueError(f"unknown init '{scheme}' (known: {', '.join(INITS)})")
