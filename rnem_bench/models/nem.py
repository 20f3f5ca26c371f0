"""The N-EM core shared by every reference model (docs/design.md, "Model protocol").

Each frame is a spatial mixture of K Bernoulli components. Component k keeps a recurrent state
theta_k; the decoder turns it into pixel probabilities psi_k, its prediction of the *next* frame.
One time step t (input frame x_t with bit-flip noise, target the clean frame x_{t+1}) is one
generalised EM step:

    M-step (learned, eq. 4):  pre_k   = W enc(gamma_k * (x_t - psi_k)) + R Upsilon_k(theta) + b
                              theta_k = sigma(pre_k),  psi_k = dec(sigma(LN(pre_k)))  (B, K, H, W)
    E-step:                   p_k     = x_{t+1} psi_k + (1 - x_{t+1})(1 - psi_k) + 1e-6
                              gamma_k = p_k / sum_j p_j                         (B, K, H, W)
    loss (eq. 3):             sum_{pixels, k} gamma_k BCE(psi_k, x_{t+1})
                                        + (1 - gamma_k) KL(Bernoulli(0) || Bernoulli(psi_k))
                              divided by the batch size; the model's loss is its mean over steps.

gamma never carries gradients (the paper's "we prevent conflicting gradient updates by not
back-propagating any gradients through gamma"): it is computed from a detached psi. Initial
state: theta = 0, psi = 0, gamma = |N(0, 1)| normalised over K (all ones when K = 1).

The layer norm "on the output" of the recurrent layer normalises what the decoder reads; the
recurrent state itself stays the plain sigmoid, as in the original TensorFlow cell wrappers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from rnem_bench.errors import RnemBenchError
from rnem_bench.models.cells import CELLS
from rnem_bench.models.convnets import ConvNetConfig, Decoder, Encoder
from rnem_bench.models.init import INITS, initialise_
from rnem_bench.models.interaction import ActionEmbedding, Independent, Relational

EPS = 1e-6  # clipping of psi in the loss, and the floor of p in the E-step (original code)


@dataclass(frozen=True)
class NEMConfig:
    image_size: int = 64
    hidden: int = 250                  # theta size
    cell: str = "sigmoid"              # "sigmoid" (eq. 4) or "lstm"
    interaction: str = "independent"   # "independent": Upsilon_k = theta_k; "relational": eq. (5)
    attention: bool = True             # relational only; False: alpha = 1 (no-att ablation)
    interaction_width: int = 250       # MLP_enc / MLP_emb / MLP_eff units
    attention_hidden: int = 100        # MLP_att hidden units
    n_actions: int = 0                 # > 0: embed the agent's action (invaders: 6)
    action_size: int = 10
    fixed_k: int | None = None         # 1 for the plain recurrent baselines (RNN, LSTM)
    init: str = "original"             # "original": TF-slim's glorot/zeros (init.py); "pytorch": its defaults

    def validate(self) -> None:
        if self.image_size < 8:
            raise RnemBenchError(f"image_size must be >= 8, got {self.image_size}")
        if self.cell not in CELLS:
            raise RnemBenchError(f"unknown cell '{self.cell}' (known: {', '.join(CELLS)})")
        if self.interaction not in ("independent", "relational"):
            raise RnemBenchError(f"unknown interaction '{self.interaction}' (independent or relational)")
        if self.init not in INITS:
            raise RnemBenchError(f"unknown init '{self.init}' (known: {', '.join(INITS)})")
        if self.hidden < 1 or self.n_actions < 0:
            raise RnemBenchError("hidden must be >= 1 and n_actions >= 0")

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}


# --------------------------------------------------------------------------- the EM pieces
def e_step(psi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """gamma (B, K, H, W) from psi (B, K, H, W) and the frame it predicts (B, H, W). No gradient."""
    psi, x = psi.detach(), target.unsqueeze(1)
    p = x * psi + (1 - x) * (1 - psi) + EPS
    return p / p.sum(dim=1, keepdim=True)


def nem_loss(psi: torch.Tensor, gamma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. (3) for one step: intra-cluster BCE weighted by gamma plus inter-cluster KL to the
    all-zero prior weighted by 1 - gamma, summed over pixels and K, divided by the batch size.

    psi, gamma: (B, K, H, W); target: (B, H, W). gamma is treated as a constant.
    """
    p = psi.clamp(EPS, 1 - EPS)
    x = target.unsqueeze(1)
    bce = -(x * torch.log(p) + (1 - x) * torch.log1p(-p))
    kl_prior = -torch.log1p(-p)  # KL(Bernoulli(0) || Bernoulli(p)) = log 1/(1-p)
    gamma = gamma.detach()
    return (gamma * bce + (1 - gamma) * kl_prior).sum() / psi.shape[0]


def init_gamma(batch: int, k: int, size: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """|N(0, 1)| normalised over K: (B, K, H, W); exactly ones when K = 1."""
    if k == 1:
        return torch.ones(batch, 1, size, size, device=device)
    g = torch.randn(batch, k, size, size, generator=generator, device=device).abs()
    return g / g.sum(dim=1, keepdim=True)


def flip_mask(shape: tuple[int, ...], p: float, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """Which pixels the input noise flips: one U(0, 1) draw per pixel, below p (bool, ``shape``)."""
    return torch.rand(shape, generator=generator, device=device) < p


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x with the pixels of ``mask`` flipped (1 - x there)."""
    return torch.where(mask, 1 - x, x)


def bitflip(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each binary pixel of x with probability p (the paper's input noise)."""
    if p <= 0:
        return x
    return flip(x, flip_mask(x.shape, p, generator, x.device))


# ---------------------------------------------------------------------------------- model
class NEM(nn.Module):
    """A neural-EM sequence model; the reference models differ only in their ``NEMConfig``."""

    def __init__(self, config: NEMConfig, name: str = "nem"):
        super().__init__()
        config.validate()
        self.config = config
        self.name = name
        conv = ConvNetConfig.for_image(config.image_size)
        self.encoder = Encoder(conv)
        self.actions = ActionEmbedding(config.n_actions, config.action_size) if config.n_actions else None
        theta_in = config.hidden + (config.action_size if config.n_actions else 0)
        if config.interaction == "relational":
            self.upsilon = Relational(theta_in, config.interaction_width, config.attention_hidden, config.attention)
        else:
            self.upsilon = Independent(theta_in)
        self.cell = CELLS[config.cell](conv.fc, self.upsilon.out_size, config.hidden)
        self.decoder = Decoder(conv, config.hidden)
        initialise_(self, config.init)
        self._step_fn = self.step

    # --- properties the harness and evaluator read
    @property
    def has_attention(self) -> bool:
        return self.upsilon.has_attention

    @property
    def needs_actions(self) -> bool:
        return self.actions is not None

    def resolve_k(self, k: int) -> int:
        """The K this model runs with: ``fixed_k`` for the K=1 baselines, else ``k``."""
        k = self.config.fixed_k or k
        if k < 1:
            raise RnemBenchError(f"k must be >= 1, got {k}")
        return k

    def initial_state(self, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(state, psi, gamma) at t = 0: state 0 (B, K, S), psi 0 (B, K, H, W), the given gamma."""
        B, K = gamma.shape[:2]
        state = gamma.new_zeros(B, K, self.cell.state_size)
        return state, torch.zeros_like(gamma), gamma

    def compile_step(self, **kwargs) -> None:
        """Use a ``torch.compile``d step in ``forward`` (same maths; one graph per step shape)."""
        self._step_fn = torch.compile(self.step, **kwargs)

    # --- one M-step: what the network computes
    def transition(
        self, x: torch.Tensor, state: torch.Tensor, psi: torch.Tensor, gamma: torch.Tensor,
        action: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x (B, H, W), state (B, K, S), psi and gamma (B, K, H, W), action (B,) ->
        new state (B, K, S), new psi (B, K, H, W), attention (B, K, K) or None."""
        B, K, H, W = psi.shape
        masked = gamma.detach() * (x.unsqueeze(1) - psi)              # gamma_k (x_t - psi_k)
        X = self.encoder(masked.reshape(B * K, 1, H, W)).view(B, K, -1)  # (B, K, 512)
        theta = self.cell.theta(state)                                # (B, K, hidden)
        if self.actions is not None:
            if action is None:
                raise RnemBenchError(f"model '{self.name}' needs actions (the dataset's 'actions' array)")
            a = self.actions(action).unsqueeze(1).expand(B, K, -1)    # (B, K, 10)
            theta = torch.cat([theta, a], dim=-1)
        upsilon, attention = self.upsilon(theta)                      # (B, K, U), (B, K, K)
        state, out = self.cell(X, upsilon, state)                     # eq. (4); out (B, K, hidden)
        psi = self.decoder(out.reshape(B * K, -1)).view(B, K, H, W)
        return state, psi, attention

    # --- one full EM step with its loss (the unit that torch.compile fuses)
    def step(self, x, target, state, psi, gamma, action=None):
        state, psi, attention = self.transition(x, state, psi, gamma, action)
        gamma = e_step(psi, target)
        return state, psi, gamma, nem_loss(psi, gamma, target), attention

    def forward(
        self, inputs: torch.Tensor, targets: torch.Tensor, gamma0: torch.Tensor,
        actions: torch.Tensor | None = None, record: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Unroll over a sequence.

        inputs (B, T, H, W): noisy frames 0..T-1; targets (B, T, H, W): clean frames 1..T;
        gamma0 (B, K, H, W); actions (B, >=T) or None. Returns {"loss": mean over steps} and with
        ``record`` also "psi", "gamma" (B, T, K, H, W) and "attention" (B, T, K, K) if any.
        """
        state, psi, gamma = self.initial_state(gamma0)
        losses, trace = [], {"psi": [], "gamma": [], "attention": []}
        for t in range(inputs.shape[1]):
            action = None if actions is None else actions[:, t]
            state, psi, gamma, loss, attention = self._step_fn(inputs[:, t], targets[:, t], state, psi, gamma, action)
            losses.append(loss)
            if record:
                trace["psi"].append(psi.detach())
                trace["gamma"].append(gamma)
                if attention is not None:
                    trace["attention"].append(attention.detach())
        out = {"loss": torch.stack(losses).mean()}
        if record:
            out.update({k: torch.stack(v, dim=1) for k, v in trace.items() if v})
        return out
