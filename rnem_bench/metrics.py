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
- Video ARI: the same ARI with the pixels of several frames of one sequence taken together as one
  clustering, so a component scores only if it keeps its object from frame to frame (a fixed grid
  does not: a moving ball crosses cells).
- Mean best overlap (MBO): per frame, for each true object, the best IoU of any predicted segment,
  where a segment is every pixel assigned to its component, background included (a coarse
  partition such as a grid cell pays for the background it holds); averaged over the objects
  present in the frame. Measured, not reported by the Evaluator: R-NEM's components split the
  background among them, and fixed 4x4 or 5x5 grids score higher MBO than the trained model
  (benchmarks/results/scores_vs_floors_mini.txt).
- Foreground IoU: IoU of the thresholded prediction (> 0.5) with the true binary frame, 1 when
  both are empty: unlike BCE it does not reward hedging (a softened or blurred copy of the frame
  lowers BCE, not IoU).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rnem_bench.dataset_format import OVERLAP
from rnem_bench.errors import RnemBenchError

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


def _contingency(pred: torch.Tensor, true: torch.Tensor, n_true: int) -> torch.Tensor:
    """Contingency tables of F frames by one bincount: pred (F, P) ids in [0, n_pred), true (F, P)
    ids in [0, n_true) -> (F, n_pred, n_true) int64 pixel counts."""
    frames, n_pred = true.shape[0], int(pred.max().item()) + 1 if pred.numel() else 1
    cells = n_pred * n_true
    dtype = torch.int32 if frames * cells < 2**31 else torch.int64  # int32 halves the memory traffic
    index = pred.to(dtype) * n_true + true.to(dtype)
    index += torch.arange(frames, dtype=dtype, device=index.device).unsqueeze(1) * cells
    return torch.bincount(index.view(-1), minlength=frames * cells).view(frames, n_pred, n_true)


def _ari_tables(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Contingency tables of the kept pixels per frame: pred (..., H, W), true (..., H, W) ->
    (F, n_pred, n_objects) float64, F the frames of the leading axes, object columns 1..n."""
    pixels = pred.shape[-2] * pred.shape[-1]
    # ignored pixels all get true label 0; that column of the contingency table is dropped
    true = torch.where(true == OVERLAP, 0, true).reshape(-1, pixels)
    n_true = int(true.max().item()) + 1 if true.numel() else 1
    return _contingency(pred.reshape(-1, pixels), true, n_true)[:, :, 1:].double()


def _ari_of_tables(table: torch.Tensor) -> torch.Tensor:
    """ARI of each contingency table (F, n_pred, n_true) -> (F,) float64, in the pair-counting form
    of scikit-learn (``pair_confusion_matrix``), with its conventions."""
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
    return torch.where(perfect, torch.ones_like(num), num / torch.where(den == 0, torch.ones_like(den), den))


def adjusted_rand_index(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """ARI per frame. pred (..., H, W) integer cluster ids in [0, K); true (..., H, W) uint8 groups.

    Pixels whose true label is 0 (background) or 255 (overlap) are ignored. Returns float64 (...).
    Uses the pair-counting form of scikit-learn (``pair_confusion_matrix``), which is exact here.
    The two pixel axes are one clustering: pass frames stacked along H (``video_adjusted_rand_index``)
    and they are scored together.
    """
    return _ari_of_tables(_ari_tables(pred, true)).view(pred.shape[:-2])


def video_adjusted_rand_index(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """ARI per sequence of the pixels of all its frames taken together as ONE clustering.

    pred (..., S, H, W) cluster ids, true (..., S, H, W) groups -> float64 (...). A component
    scores only if it keeps the same object in every frame; ignored pixels as in
    ``adjusted_rand_index`` (this is that function on the frames stacked along H).
    """
    if pred.dim() < 3 or pred.shape != true.shape:
        raise RnemBenchError(f"video ARI needs pred and true of one shape (..., S, H, W), got {tuple(pred.shape)} and {tuple(true.shape)}")
    return adjusted_rand_index(pred.flatten(-3, -2), true.flatten(-3, -2))


def frame_and_video_ari(pred: torch.Tensor, true: torch.Tensor, late_from: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(adjusted_rand_index(pred, true), video_adjusted_rand_index(pred[:, late_from:], true[:, late_from:]))``
    from one pass over the pixels: pred, true (B, T, H, W) -> (B, T) and (B,) float64. A video's
    contingency table is the sum of its frames' tables."""
    return _frame_and_video_of_tables(_ari_tables(pred, true), pred.shape[:2], late_from)


def _frame_and_video_of_tables(tables: torch.Tensor, bt: tuple[int, int], late_from: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame and video ARI from the frames' tables (B * T, n_pred, n_objects)."""
    B, T = bt
    if not 0 <= late_from < T:
        raise RnemBenchError(f"late_from must be in [0, {T}), got {late_from}")
    video = tables.view(B, T, *tables.shape[1:])[:, late_from:].sum(dim=1)  # (B, n_pred, n_objects)
    return _ari_of_tables(tables).view(B, T), _ari_of_tables(video)


def mean_best_overlap(pred: torch.Tensor, true: torch.Tensor, foreground_only: bool = False) -> torch.Tensor:
    """Mean best overlap per frame. pred (..., H, W) segment ids in [0, K); true (..., H, W) groups.

    For each true object (group id 1..n with at least one pixel in the frame) the best IoU over
    the predicted segments, averaged over those objects. A segment is every pixel assigned to
    it, background (0) and overlap (255) pixels included, so a segment that holds an object and
    much background scores low; ``foreground_only`` drops the background pixels (group 0) from
    the segments first (a variant: it forgives a coarse partition, as ARI does). Overlap pixels
    belong to no object. Returns float64 (...), NaN for a frame without objects.
    """
    lead = pred.shape[:-2]
    pixels = pred.shape[-2] * pred.shape[-1]
    true = true.reshape(-1, pixels)
    n_obj = int(torch.where(true == OVERLAP, 0, true).max().item()) if true.numel() else 0
    # columns: 0 background, 1..n_obj the objects, n_obj + 1 overlap
    true = torch.where(true == OVERLAP, n_obj + 1, true)
    table = _contingency(pred.reshape(-1, pixels), true, n_obj + 2).double()  # (F, K, n_obj + 2)
    inter = table[:, :, 1 : n_obj + 1]                                      # (F, K, n_obj)
    segment = table[:, :, int(foreground_only):].sum(dim=2, keepdim=True)   # (F, K, 1)
    obj = inter.sum(dim=1, keepdim=True)                                    # (F, 1, n_obj)
    union = segment + obj - inter
    best = (inter / union.clamp(min=1)).amax(dim=1)                         # (F, n_obj)
    present = obj.squeeze(1) > 0
    count = present.sum(dim=1)
    mbo = torch.where(present, best, 0).sum(dim=1) / count                  # NaN where count == 0
    return mbo.view(lead)


def foreground_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU per frame of the predicted foreground (``pred`` > 0.5) with the true one (``target`` 1).

    pred (..., H, W) probabilities, target (..., H, W) binary -> float64 (...); 1.0 where both
    are empty (nothing to find, nothing predicted).
    """
    p = (pred > 0.5).view(torch.uint8)  # 0/1 bytes: bitwise and/or with the binary target (4x faster than bool sums)
    t = target.to(torch.uint8)
    inter = (p & t).flatten(-2).sum(-1, dtype=torch.int32).double()
    union = (p | t).flatten(-2).sum(-1, dtype=torch.int32).double()
    return torch.where(union == 0, 1.0, inter / union.clamp(min=1))


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


# ------------------------------------------------------------------------------ grouping diagnostics
# ARI folds two kinds of error into one number. These separate them (docs/evaluation.md, "Grouping
# diagnostics"). For each frame and each true ball j present in it (its pixels in ``groups``;
# background and overlap excluded): c_jk = its pixels whose argmax_k gamma is k; dominant component
# d_j = argmax_k c_jk (ties to the lowest k); share s_j = max_k c_jk / sum_k c_jk.
#   merged:        d_j is also the dominant component of another ball of the frame
#   merged apart:  the same, counting only other balls whose pixels lie more than APART_PX from j's
#   split:         s_j < SPLIT_SHARE
# and, over the frame's foreground pixel pairs (ordered pairs of distinct pixels), the pair
# precision (pairs put together that belong together) and recall (pairs that belong together and
# are put together): merges lower precision, splits lower recall.
APART_PX = 2.0
SPLIT_SHARE = 0.8
GROUPING_COUNTS = ("balls", "merged", "merged_apart", "split",
                   "precision_sum", "precision_frames", "recall_sum", "recall_frames")


def _disk(radius: float) -> torch.Tensor:
    r = int(math.floor(radius))
    offsets = torch.arange(-r, r + 1, dtype=torch.float32)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).float()


def grouping_counts(labels: torch.Tensor, groups: torch.Tensor, table: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-frame counts of the grouping diagnostics. labels (..., H, W) integer component ids
    (argmax_k gamma); groups (..., H, W) uint8 true groups -> ``{name: float64 (...)}`` for each
    name in ``GROUPING_COUNTS``: the balls present, those merged, merged apart, split, and the sums
    and frame counts of pair precision / recall (a frame without such pairs adds 0 to both).
    ``table``: the frames' contingency tables when the caller has them (``grouping_scores``)."""
    lead = labels.shape[:-2]
    H, W = labels.shape[-2:]
    if table is None:
        table = _ari_tables(labels, groups)                               # (F, n_pred, n) c_jk with j in columns
    F, _, n = table.shape
    size = table.sum(dim=1)                                               # (F, n) pixels of ball j
    present = size > 0
    share = table.amax(dim=1) / size.clamp(min=1)
    dominant = table.argmax(dim=1)                                        # (F, n) first maximum: lowest k
    others = present.unsqueeze(1) & present.unsqueeze(2) & ~torch.eye(n, dtype=torch.bool, device=table.device)
    same = (dominant.unsqueeze(1) == dominant.unsqueeze(2)) & others      # (F, n, n) j and i share d
    if n and bool(same.any()):
        # near[f, j, i]: a pixel of i lies within APART_PX of a pixel of j (a disk dilation of j's mask)
        g = groups.reshape(F, 1, H, W).long()
        masks = (g == torch.arange(1, n + 1, device=groups.device).view(1, n, 1, 1)).float()  # (F, n, H, W)
        disk = _disk(APART_PX).to(masks.device)
        pad = disk.shape[-1] // 2
        grown = torch.nn.functional.conv2d(masks.reshape(F * n, 1, H, W), disk[None, None], padding=pad)
        grown = (grown.reshape(F, n, H * W) > 0).float()
        near = torch.bmm(grown, masks.reshape(F, n, H * W).transpose(1, 2)) > 0
        apart = same & ~near
    else:
        apart = same
    # ordered pixel pairs of the kept (foreground) pixels, as in ``_ari_of_tables``
    pixels = size.sum(dim=1)
    together = (table**2).sum(dim=(1, 2)) - pixels                        # same ball and same component
    predicted = (table.sum(dim=2) ** 2).sum(dim=1) - pixels               # same component
    true = (size**2).sum(dim=1) - pixels                                  # same ball
    has_p, has_r = predicted > 0, true > 0
    counts = {
        "balls": present.sum(dim=1),
        "merged": (same.any(dim=2) & present).sum(dim=1),
        "merged_apart": (apart.any(dim=2) & present).sum(dim=1),
        "split": ((share < SPLIT_SHARE) & present).sum(dim=1),
        "precision_sum": torch.where(has_p, together / predicted.clamp(min=1), 0.0),
        "precision_frames": has_p,
        "recall_sum": torch.where(has_r, together / true.clamp(min=1), 0.0),
        "recall_frames": has_r,
    }
    return {name: v.double().view(lead) for name, v in counts.items()}


def grouping_scores(labels: torch.Tensor, groups: torch.Tensor, late_from: int
                    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``frame_and_video_ari`` and ``grouping_counts`` of labels, groups (B, T, H, W) from one set of
    contingency tables: per-frame ARI (B, T), video ARI of steps ``late_from``.. (B,), counts (B, T)."""
    tables = _ari_tables(labels, groups)                                   # (B * T, n_pred, n_objects)
    per_frame, video = _frame_and_video_of_tables(tables, labels.shape[:2], late_from)
    return per_frame, video, grouping_counts(labels, groups, tables)


GROUPING_RATES = ("merge_rate", "merge_rate_apart", "split_rate", "pair_precision", "pair_recall")


def grouping_rates(counts: dict[str, Any]) -> dict[str, float | None]:
    """``merge_rate``, ``merge_rate_apart``, ``split_rate`` (per ball) and ``pair_precision``,
    ``pair_recall`` (mean over the frames that have such pairs) from summed ``grouping_counts``;
    None where nothing was counted (no ball, no pair)."""
    c = {name: float(v.sum()) if isinstance(v, torch.Tensor) else float(v) for name, v in counts.items()}

    def ratio(a: str, b: str) -> float | None:
        return c[a] / c[b] if c[b] > 0 else None

    return {"merge_rate": ratio("merged", "balls"), "merge_rate_apart": ratio("merged_apart", "balls"),
            "split_rate": ratio("split", "balls"), "pair_precision": ratio("precision_sum", "precision_frames"),
            "pair_recall": ratio("recall_sum", "recall_frames")}

__all__ = ["bce_map", "bce", "bce_and_masked", "copy_frame_bce", "adjusted_rand_index", "video_adjusted_rand_index",
           "frame_and_video_ari",
           "mean_best_overlap", "foreground_iou", "grid_partition", "mixture_prediction", "assignments", "EPS",
           "WRONG_PIXEL", "grouping_counts", "grouping_rates", "GROUPING_COUNTS", "APART_PX", "SPLIT_SHARE",
           "grouping_scores", "GROUPING_RATES"]
