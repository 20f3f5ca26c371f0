"""Unconditional SAVi (Kipf et al., ICLR 2022, "Conditional Object-Centric Learning from Video"),
sized for 32x32 binary frames on a CPU.

    frame x_t --encoder--> features h_t (N tokens)
    slots s_0 ~ N(mu, sigma^2)                 (learned Gaussian: no cue, no ground truth)
    corrected c_t = SlotAttention(h_t, p_{t-1})   (p_{-1} = s_0; 2 iterations on the first frame, 1 later)
    predicted p_t = TransformerBlock(c_t)          (the state for frame t + 1)
    decoder(slots) -> per-slot value logits v_k and alpha logits a_k; masks m = softmax_k(a)
    composite frame = sum_k m_k * sigmoid(v_k)

Decoding c_t reconstructs frame t (SAVi's own objective); decoding p_t predicts frame t + 1 (the
term added here, and what the benchmark scores). README.md lists which facts come from the
reference code and what is scaled down. Shapes: B batch, T frames, K slots, D slot size,
H = W image size, N = number of encoder tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SAViConfig:
    image_size: int = 32
    slot_size: int = 64                           # D (reference: 128)
    # encoder: conv layers, each followed by ReLU (reference: 4 x 5x5, 32 channels, stride 1 at 64x64)
    enc_channels: tuple[int, ...] = (32, 32, 32, 32)
    enc_strides: tuple[int, ...] = (1, 2, 1, 1)    # 32x32 -> 16x16 = 256 tokens
    enc_kernel: int = 5
    enc_mlp_hidden: int = 64                       # reference: 64
    # corrector: slot attention
    iters_first: int = 2                           # iterations on the first frame (from the learned Gaussian)
    iters_later: int = 1                           # iterations on every later frame (reference: 1)
    corrector_mlp_hidden: int = 128                # residual MLP after the GRU; 0 turns it off
    epsilon: float = 1e-8
    # predictor: one transformer block over the slots (reference: 4 heads, MLP 256)
    predictor_heads: int = 4
    predictor_mlp_hidden: int = 128
    # decoder: spatial broadcast at dec_resolution, then (transposed) convs up to image_size
    dec_resolution: int = 8
    # (reference at 64x64: 8x8 -> three 5x5 stride-2 transposed convs -> one 5x5 conv, 64 channels each)
    dec_channels: tuple[int, ...] = (32, 16)
    dec_strides: tuple[int, ...] = (2, 2)          # 2: transposed conv doubling the size, 1: conv
    dec_kernels: tuple[int, ...] = (5, 5)

    def __post_init__(self) -> None:
        self.enc_channels, self.enc_strides = tuple(self.enc_channels), tuple(self.enc_strides)
        self.dec_channels, self.dec_strides, self.dec_kernels = (
            tuple(self.dec_channels), tuple(self.dec_strides), tuple(self.dec_kernels))
        up = math.prod(self.dec_strides)
        if self.dec_resolution * up != self.image_size:
            raise ValueError(f"decoder: {self.dec_resolution} x {up} != image size {self.image_size}")
        if self.slot_size % self.predictor_heads:
            raise ValueError("slot_size must be divisible by predictor_heads")


def grid(size: int) -> torch.Tensor:
    """(size, size, 2): the (row, column) coordinates of each pixel, from -1 to +1."""
    line = torch.linspace(-1.0, 1.0, size)
    return torch.stack(torch.meshgrid(line, line, indexing="ij"), dim=-1)


class PositionEmbedding(nn.Module):
    """Adds a learned linear projection of the fixed coordinate grid: x (..., S, S, C) + W g."""

    def __init__(self, size: int, channels: int):
        super().__init__()
        self.register_buffer("grid", grid(size), persistent=False)  # (S, S, 2)
        self.proj = nn.Linear(2, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.grid)


class MLP(nn.Module):
    """Linear -> ReLU -> Linear, with an optional LayerNorm in front (pre-norm)."""

    def __init__(self, dim: int, hidden: int, out: int | None = None, pre_norm: bool = False):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if pre_norm else nn.Identity()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(self.norm(x))))


class Encoder(nn.Module):
    """CNN -> + position embedding -> MLP (pre-norm) -> flatten: (B, H, W) -> (B, N, C)."""

    def __init__(self, cfg: SAViConfig):
        super().__init__()
        layers, c_in = [], 1
        for c, s in zip(cfg.enc_channels, cfg.enc_strides):
            layers += [nn.Conv2d(c_in, c, cfg.enc_kernel, stride=s, padding=cfg.enc_kernel // 2), nn.ReLU()]
            c_in = c
        self.cnn = nn.Sequential(*layers)
        size = cfg.image_size // math.prod(cfg.enc_strides)
        self.pos = PositionEmbedding(size, c_in)
        self.mlp = MLP(c_in, cfg.enc_mlp_hidden, pre_norm=True)
        self.out_channels = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cnn(x.unsqueeze(1))                 # (B, C, S, S)
        h = self.pos(h.permute(0, 2, 3, 1))          # (B, S, S, C), channels last
        return self.mlp(h).flatten(1, 2)             # (B, N = S*S, C)


class SlotAttention(nn.Module):
    """The corrector. Per iteration, with q = W_q LN(slots), k = W_k LN(h), v = W_v LN(h):

        attn[k, n]  = softmax over the K slots of q_k . k_n / sqrt(D)   (slots compete for inputs)
        updates_k   = sum_n attn[k, n] v_n / (sum_n attn[k, n] + eps)  (weighted mean)
        slots       = GRU(updates, slots)
        slots       = slots + MLP(LN(slots))                           (residual)
    """

    def __init__(self, in_dim: int, cfg: SAViConfig):
        super().__init__()
        D = cfg.slot_size
        self.norm_inputs, self.norm_slots = nn.LayerNorm(in_dim), nn.LayerNorm(D)
        self.to_q = nn.Linear(D, D, bias=False)
        self.to_k = nn.Linear(in_dim, D, bias=False)
        self.to_v = nn.Linear(in_dim, D, bias=False)
        self.gru = nn.GRUCell(D, D)
        self.mlp = MLP(D, cfg.corrector_mlp_hidden, pre_norm=True) if cfg.corrector_mlp_hidden else None
        self.eps, self.scale = cfg.epsilon, D ** -0.5

    def forward(self, slots: torch.Tensor, h: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
        B, K, D = slots.shape
        h = self.norm_inputs(h)
        k, v = self.to_k(h), self.to_v(h)                               # (B, N, D)
        for _ in range(iters):
            q = self.to_q(self.norm_slots(slots))                       # (B, K, D)
            attn = torch.softmax(q @ k.transpose(1, 2) * self.scale, dim=1)   # (B, K, N), sums to 1 over K
            weights = attn / (attn.sum(dim=-1, keepdim=True) + self.eps)
            updates = weights @ v                                       # (B, K, D)
            slots = self.gru(updates.reshape(B * K, D), slots.reshape(B * K, D)).view(B, K, D)
            if self.mlp is not None:
                slots = slots + self.mlp(slots)
        return slots, attn


class Predictor(nn.Module):
    """The transition model: one transformer block over the slots, post-norm like the reference's
    default: x = LN(s + MHSA(s)); out = LN(x + MLP(x)). Self-attention lets slots interact."""

    def __init__(self, cfg: SAViConfig):
        super().__init__()
        D = cfg.slot_size
        self.attn = nn.MultiheadAttention(D, cfg.predictor_heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.mlp = MLP(D, cfg.predictor_mlp_hidden)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        x = self.norm1(s + self.attn(s, s, s, need_weights=False)[0])
        return self.norm2(x + self.mlp(x))


class Decoder(nn.Module):
    """Spatial broadcast decoder: each slot is tiled on an r x r grid, gets the position embedding,
    and is decoded on its own into a value logit and an alpha logit per pixel.
    (B, K, D) -> values (B, K, H, W), alpha logits (B, K, H, W)."""

    def __init__(self, cfg: SAViConfig):
        super().__init__()
        self.r = cfg.dec_resolution
        self.pos = PositionEmbedding(self.r, cfg.slot_size)
        layers, c_in = [], cfg.slot_size
        for c, s, k in zip(cfg.dec_channels, cfg.dec_strides, cfg.dec_kernels):
            if s == 2:  # doubles the size: (r - 1) * 2 - 2 * pad + k + out_pad = 2 r
                layers.append(nn.ConvTranspose2d(c_in, c, k, stride=2, padding=k // 2, output_padding=1))
            else:
                layers.append(nn.Conv2d(c_in, c, k, padding=k // 2))
            layers.append(nn.ReLU())
            c_in = c
        self.cnn = nn.Sequential(*layers)
        self.readout = nn.Conv2d(c_in, 2, 1)  # a dense layer per pixel: value logit, alpha logit

    def forward(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, K, D = slots.shape
        x = slots.reshape(B * K, 1, 1, D).expand(B * K, self.r, self.r, D)   # spatial broadcast
        x = self.pos(x).permute(0, 3, 1, 2)                                  # (B*K, D, r, r)
        out = self.readout(self.cnn(x))                                      # (B*K, 2, H, W)
        out = out.view(B, K, 2, *out.shape[-2:])
        return out[:, :, 0], out[:, :, 1]


class SAVi(nn.Module):
    def __init__(self, cfg: SAViConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        # the learned Gaussian every slot is drawn from (shared by all slots, so K is free at test time)
        self.slot_mu = nn.Parameter(torch.randn(cfg.slot_size) * cfg.slot_size ** -0.5)
        self.slot_log_sigma = nn.Parameter(torch.zeros(cfg.slot_size))
        self.corrector = SlotAttention(self.encoder.out_channels, cfg)
        self.predictor = Predictor(cfg)
        self.decoder = Decoder(cfg)

    def init_slots(self, batch: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """s_0 = mu + sigma * eps, eps ~ N(0, I): (B, K, D)."""
        eps = torch.randn(batch, k, self.cfg.slot_size, generator=generator, device=self.slot_mu.device)
        return self.slot_mu + self.slot_log_sigma.exp() * eps

    def forward(self, frames: torch.Tensor, k: int, generator: torch.Generator | None = None,
                slots: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Run the corrector and the predictor over frames (B, T, H, W) (the inputs, noisy or not).

        Returns corrected (B, T, K, D): the slots after seeing frame t; predicted (B, T, K, D):
        the predictor's state for frame t + 1, made from frames 0..t only; attn (B, T, K, N).
        ``slots`` continues from a given predicted state instead of a fresh draw."""
        B, T = frames.shape[:2]
        h = self.encoder(frames.flatten(0, 1)).unflatten(0, (B, T))  # (B, T, N, C): all frames in one call
        fresh = slots is None
        state = self.init_slots(B, k, generator) if fresh else slots
        corrected, predicted, attns = [], [], []
        for t in range(T):
            iters = self.cfg.iters_first if (t == 0 and fresh) else self.cfg.iters_later
            c, attn = self.corrector(state, h[:, t], iters)
            state = self.predictor(c)
            corrected.append(c), predicted.append(state), attns.append(attn)
        return {"corrected": torch.stack(corrected, 1), "predicted": torch.stack(predicted, 1),
                "attn": torch.stack(attns, 1)}

    def decode(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """slots (..., K, D) -> value logits, alpha logits (..., K, H, W), all slot sets in one call."""
        lead = slots.shape[:-2]
        values, alphas = self.decoder(slots.reshape(-1, *slots.shape[-2:]))
        return values.view(*lead, *values.shape[1:]), alphas.view(*lead, *alphas.shape[1:])

    def rollout(self, state: torch.Tensor, steps: int) -> torch.Tensor:
        """The predictor alone, ``steps`` times from ``state`` (B, K, D): (B, steps, K, D)."""
        out = []
        for _ in range(steps):
            state = self.predictor(state)
            out.append(state)
        return torch.stack(out, 1)


# ----------------------------------------------------------------------------- the output model
def mixture_log_probs(values: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x = 1), log p(x = 0) per pixel, with K on axis -3.

    Each slot k says pixel x is on with probability sigmoid(v_k); the masks m = softmax_k(alpha)
    mix them: p(x) = sum_k m_k Bernoulli(x; sigmoid(v_k)) = Bernoulli(x; sum_k m_k sigmoid(v_k)), so the
    BCE of the composite frame is exactly this mixture's negative log-likelihood. In log space:
    log p(x = 1) = logsumexp_k(log m_k + log sigmoid(v_k)), log p(x = 0) likewise with -v_k."""
    log_m = F.log_softmax(alphas, dim=-3)
    return (torch.logsumexp(log_m + F.logsigmoid(values), dim=-3),
            torch.logsumexp(log_m + F.logsigmoid(-values), dim=-3))


def bce(values: torch.Tensor, alphas: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(target) summed over pixels: (..., K, H, W) logits, (..., H, W) target -> (...)."""
    log_p1, log_p0 = mixture_log_probs(values, alphas)
    return -(target * log_p1 + (1 - target) * log_p0).sum(dim=(-2, -1))


def composite(values: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame = sum_k m_k sigmoid(v_k) in [0, 1], masks m summing to 1 over K)."""
    masks = torch.softmax(alphas, dim=-3)
    return (masks * torch.sigmoid(values)).sum(dim=-3).clamp(0.0, 1.0), masks


def bitflip(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each binary pixel with probability p (the benchmark's input noise)."""
    if p <= 0:
        return x
    flips = torch.rand(x.shape, generator=generator, device=x.device) < p
    return torch.where(flips, 1.0 - x, x)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
