"""The benchmark's metrics on batches of sequences, vectorised in torch (DESIGN.md, "Evaluation").

Index convention: a prediction at step t is the prediction of frame t + 1.

- BCE: binary cross-entropy of a probability image against the true next frame, summed over
  pixels. The probability given to the true pixel value is floored at 1e-6, so a confidently
  wrong pixel costs -log(1e-6) = 13.8 instead of infinity, while a perfect prediction costs
  exactly 0; the copy-current-frame baseline is scored the same way. Mixture models are scored
  on max_k psi_k (paper, footnote 4: the E-step needs the true frame, so max is used; an upper
  bound of the true loss).
- Relational BCE: the same sum restricted to pixels where ``collisions`` of the true frame is 1.
- ARI: argmax_k gamma_k against ``groups`` of the true frame, ignoring background (0) and
  overlap (255) pixels, per frame; equal to scikit-learn's ``adjusted_rand_score`` on the same
  pixels, including its conventions (1.0 when both labelings put everything in one cluster,
  when each pixel is its own cluster, or when no pixel is left).
- Grid ARI: the ARI of a fixed n x n grid of equal cells, the same partition for every frame. It
  knows nothing of objects, yet it scores high where few balls lie far apart (they fall in
  different cells), so it is the floor a model's ARI has to beat before it says anything about
  object discovery, as the copy-frame loss is for BCE.
"""

from __future__ import annotations

import math

import torch

from rnem_bench.data.schema import OVERLAP

EPS = 1e-6


def bce_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE (..., H, W) float32 of probabilities ``pred`` against binary ``target``.

    The target is binary, so BCE = -log q with q the probability given to the true value, floored
    at EPS. Computed in place on one fresh buffer: the evaluator's hottest loop.
    """
    p = pred.float()
    q = torch.sub(1, p)                      # 1 - p where the true pixel is 0 ...
    torch.where(target.bool(), p, q, out=q)  # ... p where it is 1 (exact, unlike |p + x - 1|)
    return q.clamp_(min=EPS).log_().neg_()


def _frame_sums(b: torch.Tensor) -> torch.Tensor:
    # per-frame sums in float32 (torch sums pairwise: ~1e-7 relative error over 4096 pixels);
    # the evaluator accumulates them over sequences in float64
    return b.sum(dim=(-2, -1)).double()


def bce(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """BCE summed over the last two axes (pixels), optionally only where ``mask`` is 1."""
    b = bce_map(pred, target)
    return _frame_sums(b if mask is None else torch.where(mask.bool(), b, 0))


def bce_and_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bce(pred, target), bce(pred, target, mask))`` from one per-pixel map."""
    b = bce_map(pred, target)
    return _frame_sums(b), _frame_sums(torch.where(mask.bool(), b, 0))


WRONG_PIXEL = -math.log(EPS)  # BCE of a confidently wrong pixel, 13.8


def copy_frame_bce(frame: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``bce`` of a binary uint8 ``frame`` used as the prediction (the copy-current-frame baseline).

    A binary prediction is right (cost 0) or confidently wrong (cost -log EPS) at each pixel, so
    the sum is the count of differing pixels times -log EPS: a few times cheaper than ``bce``.
    """
    wrong = torch.bitwise_xor(frame, target)
    if mask is not None:
        wrong = wrong & mask
    return wrong.float().sum(dim=(-2, -1)).double() * WRONG_PIXEL


def adjusted_rand_index(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """ARI per frame. pred (..., H, W) integer cluster ids in [0, K); true (..., H, W) uint8 groups.

    Pixels whose true label is 0 (background) or 255 (overlap) are ignored. Returns float64 (...).
    Uses the pair-counting form of scikit-learn (``pair_confusion_matrix``), which is exact here.
    """
    lead = pred.shape[:-2]
    pixels = pred.shape[-2] * pred.shape[-1]
    # ignored pixels all get true label 0; that column of the contingency table is dropped below
    true = torch.where(true == OVERLAP, 0, true).reshape(-1, pixels)
    frames = true.shape[0]
    n_pred = int(pred.max().item()) + 1 if pred.numel() else 1
    n_true = int(true.max().item()) + 1 if true.numel() else 1
    cells = n_pred * n_true
    dtype = torch.int32 if frames * cells < 2**31 else torch.int64  # int32 halves the memory traffic
    # contingency tables of all frames by one bincount: (F, n_pred, n_true)
    index = pred.reshape(-1, pixels).to(dtype) * n_true + true.to(dtype)
    index += torch.arange(frames, dtype=dtype, device=index.device).unsqueeze(1) * cells
    table = torch.bincount(index.view(-1), minlength=frames * cells).view(frames, n_pred, n_true)
    table = table[:, :, 1:].double()
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


def grid_partition(height: int, width: int, n: int) -> torch.Tensor:
    """(H, W) int32 cluster ids of an n x n grid of (nearly) equal cells, row-major."""
    rows = torch.arange(height) * n // height
    cols = torch.arange(width) * n // width
    return (rows[:, None] * n + cols[None, :]).to(torch.int32)


def mixture_prediction(psi: torch.Tensor) -> torch.Tensor:
    """The frame a mixture predicts for scoring: max over the K axis (..., K, H, W) -> (..., H, W)."""
    best = psi.select(-3, 0).clone()
    for k in range(1, psi.shape[-3]):  # a loop over the small K axis beats a strided reduction
        torch.maximum(best, psi.select(-3, k), out=best)
    return best


def assignments(gamma: torch.Tensor) -> torch.Tensor:
    """argmax_k gamma (..., K, H, W) -> (..., H, W) int32 (ties go to the lowest k, like argmax)."""
    best = gamma.select(-3, 0).clone()
    label = torch.zeros(best.shape, dtype=torch.int32, device=gamma.device)
    for k in range(1, gamma.shape[-3]):
        g = gamma.select(-3, k)
        better = g > best
        label.masked_fill_(better, k)
        torch.maximum(best, g, out=best)
    return label


__all__ = ["bce_map", "bce", "bce_and_masked", "copy_frame_bce", "adjusted_rand_index", "grid_partition", "mixture_prediction", "assignments", "EPS", "WRONG_PIXEL"]
