"""The benchmark's metrics on batches of sequences, vectorised in torch (DESIGN.md, "Evaluation").

Index convention: a prediction at step t is the prediction of frame t + 1.

- BCE: binary cross-entropy of a probability image against the true next frame, summed over
  pixels. Probabilities are clamped to [1e-6, 1 - 1e-6] (the models' own clamp), so a wrong
  0/1 prediction costs log(1e6) = 13.8 per pixel; the copy-current-frame baseline is scored the
  same way. Mixture models are scored on max_k psi_k (paper, footnote 4: the E-step needs the true
  frame, so max is used; an upper bound of the true loss).
- Relational BCE: the same sum restricted to pixels where ``collisions`` of the true frame is 1.
- ARI: argmax_k gamma_k against ``groups`` of the true frame, ignoring background (0) and
  overlap (255) pixels, per frame; equal to scikit-learn's ``adjusted_rand_score`` on the same
  pixels, including its conventions (1.0 when both labelings put everything in one cluster,
  when each pixel is its own cluster, or when no pixel is left).
"""

from __future__ import annotations

import torch

from rnem_bench.data.schema import OVERLAP

EPS = 1e-6


def bce_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE (..., H, W) of probabilities ``pred`` against binary ``target``."""
    p = pred.double().clamp(EPS, 1 - EPS)
    x = target.double()
    return -(x * torch.log(p) + (1 - x) * torch.log1p(-p))


def bce(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """BCE summed over the last two axes (pixels), optionally only where ``mask`` is 1."""
    b = bce_map(pred, target)
    if mask is not None:
        b = b * mask.double()
    return b.sum(dim=(-2, -1))


def adjusted_rand_index(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """ARI per frame. pred (..., H, W) integer cluster ids in [0, K); true (..., H, W) uint8 groups.

    Pixels whose true label is 0 (background) or 255 (overlap) are ignored. Returns float64 (...).
    Uses the pair-counting form of scikit-learn (``pair_confusion_matrix``), which is exact here.
    """
    lead = pred.shape[:-2]
    pred = pred.reshape(-1, pred.shape[-2] * pred.shape[-1]).long()
    true = true.reshape(-1, true.shape[-2] * true.shape[-1]).long()
    valid = (true != 0) & (true != OVERLAP)
    n_pred = int(pred.max().item()) + 1 if pred.numel() else 1
    n_true = 256
    # contingency table per frame: (F, n_pred * n_true), pixels outside `valid` dropped
    index = pred * n_true + true
    table = torch.zeros(pred.shape[0], n_pred * n_true, dtype=torch.float64, device=pred.device)
    table.scatter_add_(1, index, valid.double())
    table = table.view(-1, n_pred, n_true)
    n = table.sum(dim=(1, 2))
    rows, cols = table.sum(dim=2), table.sum(dim=1)
    sum_sq = (table**2).sum(dim=(1, 2))
    tp = sum_sq - n
    fp = (rows**2).sum(dim=1) - sum_sq   # pairs together in pred, apart in true
    fn = (cols**2).sum(dim=1) - sum_sq   # pairs together in true, apart in pred
    tn = n**2 - fp - fn - sum_sq
    num = 2.0 * (tp * tn - fn * fp)
    den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    perfect = (fn == 0) & (fp == 0)
    ari = torch.where(perfect, torch.ones_like(num), num / torch.where(den == 0, torch.ones_like(den), den))
    return ari.view(lead)


def mixture_prediction(psi: torch.Tensor) -> torch.Tensor:
    """The frame a mixture predicts for scoring: max over the K axis (..., K, H, W) -> (..., H, W)."""
    return psi.max(dim=-3).values
