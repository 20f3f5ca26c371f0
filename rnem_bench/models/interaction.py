"""The interaction function Upsilon of eq. (4): what the recurrence sees of the previous thetas.

    theta_k(t) = sigma(W . X(t) + R . Upsilon_k(theta(t-1)))                          (4)

- ``Independent`` (RNN-EM, RNN, LSTM): Upsilon_k(theta) = theta_k, a plain recurrence per
  component (no information flows between components).
- ``Relational`` (R-NEM), eq. (5)::

      Upsilon_k(theta) = [theta^_k ; E_k],  theta^_k = MLP_enc(theta_k),  E_k = sum_{i != k} alpha_ki e_ki
      xi_ki = MLP_emb([theta^_k ; theta^_i]),  e_ki = MLP_eff(xi_ki),  alpha_ki = MLP_att(xi_ki)

  with MLP_enc/emb/eff one layer of 250 units, layer norm, ReLU and MLP_att 100 units, layer
  norm, tanh, then 1 sigmoid (appendix A). ``attention=False`` gives the "R-NEM no att" ablation: alpha = 1.

Both are shared across components and sum over the other components, so they are equivariant
to permutations of the K components and work for any K (trained at K=5, run at K=8).

Invaders: when ``n_actions > 0`` an embedding of the agent's action (fc 10, layer norm, ReLU,
written as an embedding lookup, which equals a fully connected layer on the one-hot action) is
concatenated to every theta_k before the interaction.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(n_in: int, n_out: int, act: nn.Module) -> nn.Sequential:
    """One fully connected layer, layer norm, activation (the appendix's building block, in the
    original code's order)."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LayerNorm(n_out), act)


class ActionEmbedding(nn.Module):
    """Action id (B,) -> (B, size): fc ``size``, layer norm, ReLU on the one-hot action."""

    def __init__(self, n_actions: int, size: int = 10):
        super().__init__()
        self.n_actions = n_actions
        self.embed = nn.Embedding(n_actions, size)  # == Linear on one-hot (bias folded into rows)
        self.norm = nn.LayerNorm(size)

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.embed(action.long())))


class Independent(nn.Module):
    """Upsilon_k(theta) = theta_k (RNN-EM): no interaction between components."""

    has_attention = False

    def __init__(self, theta_size: int):
        super().__init__()
        self.out_size = theta_size

    def forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return theta, None


class Relational(nn.Module):
    """Eq. (5): theta (B, K, M) -> Upsilon (B, K, 2*width) and attention alpha (B, K, K)."""

    has_attention = True

    def __init__(self, theta_size: int, width: int = 250, att_hidden: int = 100, attention: bool = True):
        super().__init__()
        self.enc = mlp(theta_size, width, nn.ReLU())
        self.emb = mlp(2 * width, width, nn.ReLU())
        self.eff = mlp(width, width, nn.ReLU())
        self.att = nn.Sequential(mlp(width, att_hidden, nn.Tanh()), nn.Linear(att_hidden, 1), nn.Sigmoid()) if attention else None
        self.out_size = 2 * width

    def forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, K, _ = theta.shape
        h = self.enc(theta)                                        # theta^   (B, K, W)
        # All ordered pairs (k, i), the diagonal included so that every tensor stays dense;
        # the mask below removes i == k from the sum.
        focus = h.unsqueeze(2).expand(B, K, K, h.shape[-1])        # theta^_k (B, K, K, W)
        context = h.unsqueeze(1).expand(B, K, K, h.shape[-1])      # theta^_i (B, K, K, W)
        xi = self.emb(torch.cat([focus, context], dim=-1))         # xi_ki    (B, K, K, W)
        effect = self.eff(xi)                                      # e_ki     (B, K, K, W)
        others = 1.0 - torch.eye(K, device=theta.device, dtype=effect.dtype)  # (K, K), 0 on i == k
        if self.att is None:
            alpha = others.expand(B, K, K)                         # no-att ablation: alpha = 1
        else:
            alpha = self.att(xi).squeeze(-1) * others              # alpha_ki (B, K, K)
        E = (alpha.unsqueeze(-1) * effect).sum(dim=2)              # E_k      (B, K, W)
        return torch.cat([h, E], dim=-1), alpha
