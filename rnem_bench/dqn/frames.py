"""Frame preprocessing of the DQN papers, in plain NumPy (no OpenCV).

Mnih et al. turn each 210x160 Atari screen into an 84x84 grayscale image. We follow the
Nature-DQN convention that today's wrappers share (gymnasium's ``AtariPreprocessing``, OpenAI
baselines' ``WarpFrame``): the whole screen is area-resampled to 84x84, no crop. Area resampling
is a weighted average over the source pixels each target pixel covers, first along rows, then
along columns (what OpenCV's INTER_AREA computes).

This deviates from the R-NEM paper (appendix A.2: "pre-processed as in Mnih et al. (2013)"), whose
reference resized to 110x84 and cropped the 84x84 play area, dropping the score, with frame skip 3
for Space Invaders. We keep the 2015 conventions (with frame skip 4 and the max of the last two
raw frames, see ``ale.py``) because our DQN is trained on them and the recorder must show it the
frames it learned from; the canonical invaders data are pinned to them.

The R-NEM paper then thresholds the [0, 1] image at 0.0001: every pixel that any lit screen pixel
touches becomes 1, so colour does not reveal which group an entity belongs to.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Area resampling along one axis, as (n_out, m) source indices and weights (rows sum to 1).

    Output cell o covers input interval [o * s, (o + 1) * s), s = n_in / n_out; each input cell
    contributes its overlap with that interval, divided by s. At most m = ceil(s) + 1 cells overlap.
    """
    scale = n_in / n_out
    lo = np.arange(n_out) * scale
    first = np.floor(lo).astype(np.int64)
    m = int(np.ceil(scale)) + 1
    idx = first[:, None] + np.arange(m)[None, :]                       # (n_out, m) candidate cells
    overlap = np.minimum(lo[:, None] + scale, idx + 1) - np.maximum(lo[:, None], idx)
    weights = (np.clip(overlap, 0.0, None) / scale).astype(np.float32)
    idx = np.minimum(idx, n_in - 1)                                     # padding cells carry weight 0
    for a in (idx, weights):
        a.setflags(write=False)                                         # cached: shared by every caller
    return idx, weights


def resize_area(screen: np.ndarray, size: int) -> np.ndarray:
    """(H, W) grayscale 0..255 -> (size, size) float32 0..255, area-averaged.

    Gathers and weighted sums, not matrix products: a BLAS call this small is slower than the
    arithmetic when other processes share the cores (OpenBLAS threads then wait for each other).
    """
    h, w = screen.shape
    rows_idx, rows_w = area_weights(h, size)
    cols_idx, cols_w = area_weights(w, size)
    rows = np.einsum("omw,om->ow", screen[rows_idx].astype(np.float32), rows_w)      # (size, W)
    return np.einsum("hom,om->ho", rows[:, cols_idx], cols_w)                          # (size, size)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float 0..255 -> uint8 (round to nearest), what the DQN sees and the replay buffer stores."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def binarize(image: np.ndarray, threshold: float) -> np.ndarray:
    """Float 0..255 image -> uint8 0/1: 1 where the [0, 1]-scaled intensity exceeds ``threshold``."""
    return (image > threshold * 255.0).astype(np.uint8)
