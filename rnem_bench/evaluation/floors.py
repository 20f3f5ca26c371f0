"""Floors: what trivial predictors score, through the Evaluator itself, on a dataset's test split.

A score says something about a model only above what a predictor that learned nothing reaches.
BCE rewards hedging, so the copy-current-frame baseline is a weak floor: a copy softened by one
constant, or blurred, scores lower BCE than the copy; fixed grids reach the ARI of trained models.
Every floor is scored by ``Evaluator.update``, batch by batch, exactly as a model is.

Next-step prediction (``prediction``, step t predicts frame t + 1) and, where the sequences are long
enough, simulation (``simulation``: frames ``sim_observe + 1 .. sim_observe + S`` predicted from
the frames ``0 .. sim_observe - 1``, S = 10), one predictor each:

- ``copy``: frame t (the paper's baseline); in simulation the last observed frame, frozen.
- ``soft-copy``: ``c + (1 - 2c) * copy``, c the constant that minimises the BCE of the softened
  copy on the VALID split (all steps and pixels; in simulation its own constant, over the S
  simulated frames). For a binary copy that minimiser is exact and closed-form: the fraction of
  pixels where the copy is wrong (the BCE is ``-R log(1 - c) - W log c`` over R right and W wrong
  pixels). A test-only task (``Task.train_task`` set) has no valid split: its train task's is used.
- ``blur-copy``: the copy blurred by a Gaussian of sigma 3 px at 64x64, scaled with the image
  (1.5 px at 32x32), truncated at 3 sigma, zero padding (the world outside the frame is empty).
- ``mean-image``: the mean over the TRAIN split's frames (all sequences, all frames) per pixel, for
  every step (the train task's train split for a test-only task).

Grouping: the fixed n x n grids of ``GRIDS`` (the same partition for every frame, as
``grid_ari_baselines``) scored on ``ari_mean``, ``ari_last``, ``ari_video``, ``ari_late``.
``leaderboard.board.FLOORS`` and ``GRID_SCORES`` pin the values (the tests recompute the mini tier's).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnem_bench.data.store import Dataset, open_dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import GRIDS, EvalConfig, Evaluator
from rnem_bench.protocol import LAST_STEPS, SIM_OBSERVE, SIM_STEPS
from rnem_bench.metrics import grid_partition

BLUR_SIGMA_AT_64 = 3.0    # px at 64x64; scaled with the image size
PREDICTORS = ("copy", "soft-copy", "blur-copy", "mean-image")
NEXT_KEYS = ("bce_last", f"bce_last{LAST_STEPS}", "iou_last", f"iou_last{LAST_STEPS}")
SIM_KEYS = ("simulation_bce_mean", "simulation_bce_last", "simulation_iou_mean", "simulation_iou_last")
GRID_KEYS = ("ari_mean", "ari_last", "ari_video", "ari_late")


# ----------------------------------------------------------------------------- the predictors
def blur_sigma(size: int) -> float:
    """Sigma in px of the blurred copy at ``size`` x ``size``: 3 px at 64, 1.5 px at 32."""
    return BLUR_SIGMA_AT_64 * size / 64


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Frames (..., H, W) in [0, 1] blurred by a normalised Gaussian kernel of ``sigma`` px,
    truncated at 3 sigma, zero padding (mass near the border leaks out). Float32, same shape."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).float().to(frames.device)
    shape = frames.shape
    img = frames.reshape(-1, 1, *shape[-2:]).float()                               # (N, 1, H, W)
    img = F.conv2d(img, kernel.view(1, 1, 1, -1), padding=(0, radius))             # along W
    img = F.conv2d(img, kernel.view(1, 1, -1, 1), padding=(radius, 0))             # along H
    return img.clamp_(0, 1).reshape(shape)


def soften(frames: torch.Tensor, c: float) -> torch.Tensor:
    """``c + (1 - 2c) * frames``: a binary frame with every pixel hedged by c towards 1/2."""
    return frames.float() * (1 - 2 * c) + c


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def soft_constants(ds: Dataset, split: str = "valid", sim_observe: int = SIM_OBSERVE, sim_steps: int = SIM_STEPS,
                   batch_size: int = 500, limit: int | None = None) -> dict[str, float | None]:
    """The c minimising the BCE of ``soften(copy, c)`` on ``split``: the fraction of wrong copy pixels.

    ``next``: over every step t and pixel, frame t against frame t + 1; ``simulation``: over the
    ``sim_steps`` simulated frames, the last observed frame ``sim_observe - 1`` against frames
    ``sim_observe + 1 .. sim_observe + sim_steps`` (None where the sequences are shorter).
    """
    if split not in ds.counts:
        raise RnemBenchError(f"{ds.path} has no '{split}' split to fit the softened copy on")
    feats = ds.array(split, "features")
    n = ds.counts[split] if limit is None else min(limit, ds.counts[split])
    simulate = feats.shape[1] >= sim_observe + sim_steps + 1
    wrong = {"next": 0, "simulation": 0}
    for start, stop in _batches(n, batch_size):
        x = torch.from_numpy(feats[start:stop])                                    # (B, T + 1, H, W) uint8
        wrong["next"] += int(torch.bitwise_xor(x[:, :-1], x[:, 1:]).sum())
        if simulate:
            frozen = x[:, sim_observe - 1 : sim_observe]
            wrong["simulation"] += int(torch.bitwise_xor(frozen, x[:, sim_observe + 1 : sim_observe + 1 + sim_steps]).sum())
    pixels = n * feats.shape[-1] * feats.shape[-2]
    return {"next": wrong["next"] / (pixels * (feats.shape[1] - 1)),
            "simulation": wrong["simulation"] / (pixels * sim_steps) if simulate else None}


def mean_image(ds: Dataset, split: str = "train", batch_size: int = 500, limit: int | None = None) -> torch.Tensor:
    """(H, W) float32: each pixel's mean over every frame of every sequence of ``split``."""
    if split not in ds.counts:
        raise RnemBenchError(f"{ds.path} has no '{split}' split to average")
    feats = ds.array(split, "features")
    n = ds.counts[split] if limit is None else min(limit, ds.counts[split])
    total = torch.zeros(feats.shape[-2:], dtype=torch.float64)
    for start, stop in _batches(n, batch_size):
        total += torch.from_numpy(feats[start:stop]).sum(dim=(0, 1), dtype=torch.float64)
    return (total / (n * feats.shape[1])).float()


# ------------------------------------------------------------------------------- scoring
def next_step_floors(ds: Dataset, fit: Dataset | None = None, config: EvalConfig = EvalConfig(batch_size=250),
                     sim_steps: int = SIM_STEPS, fit_limit: int | None = None) -> dict[str, dict[str, Any]]:
    """``Evaluator.result()`` of each predictor in ``PREDICTORS`` on ``config.split`` of ``ds``.

    ``fit``: the dataset whose valid split fits the soft constants and whose train split gives the
    mean image (default ``ds``; a test-only task passes its train task's dataset). Simulation is
    scored where the sequences hold ``sim_observe + sim_steps + 1`` frames.
    """
    fit = fit or ds
    feats = ds.array(config.split, "features")
    steps, size = feats.shape[1] - 1, feats.shape[-1]
    obs = config.sim_observe
    simulate = steps + 1 >= obs + sim_steps + 1
    c = soft_constants(fit, sim_observe=obs, sim_steps=sim_steps, limit=fit_limit)
    mean = mean_image(fit, limit=fit_limit)
    if mean.shape != feats.shape[-2:]:
        raise RnemBenchError(f"the mean image of {fit.path} is {tuple(mean.shape)}, the frames of {ds.path} {tuple(feats.shape[-2:])}")
    sigma = blur_sigma(size)
    evaluators = {name: Evaluator(ds, config) for name in PREDICTORS}
    n = evaluators["copy"].n
    for start, stop in _batches(n, config.batch_size):
        x = torch.from_numpy(feats[start:stop]).float()                           # (B, T + 1, H, W)
        current = x[:, :-1]                                                        # (B, T, H, W)
        frozen = x[:, obs - 1 : obs] if simulate else None                         # (B, 1, H, W)
        preds = {
            "copy": (current, frozen),
            "soft-copy": (soften(current, c["next"]), soften(frozen, c["simulation"]) if simulate else None),
            "blur-copy": (gaussian_blur(current, sigma), gaussian_blur(frozen, sigma) if simulate else None),
            "mean-image": (mean.expand_as(current), mean.expand_as(frozen) if simulate else None),
        }
        for name, (prediction, sim) in preds.items():
            batch = {"prediction": prediction}
            if simulate:
                batch["simulation"] = sim.expand(-1, sim_steps, -1, -1)              # (B, S, H, W)
            evaluators[name].update(start, batch)
    out = {name: ev.result() for name, ev in evaluators.items()}
    out["soft-copy"]["soft_c"] = c
    out["blur-copy"]["blur_sigma"] = sigma
    return out


def grid_floors(ds: Dataset, config: EvalConfig = EvalConfig(batch_size=250),
                grids: tuple[int, ...] = GRIDS) -> dict[str, dict[str, Any]]:
    """``Evaluator.result()`` of each fixed n x n grid (n in ``grids``) as the mixture's gamma
    (one-hot, the same partition every frame; psi = gamma, its BCE means nothing), keyed "2x2"..."""
    if not ds.has_groups:
        raise RnemBenchError(f"{ds.path} has no 'groups' array: no grouping to score")
    shape = ds.array(config.split, "features").shape
    steps, height, width = shape[1] - 1, shape[-2], shape[-1]
    out = {}
    for g in grids:
        onehot = torch.eye(g * g)[grid_partition(height, width, g).long()].permute(2, 0, 1)  # (K, H, W)
        # batches of ~2^27 floats (512 MB): the one-hot gamma is K times a frame prediction; smaller
        # batches re-read each stored chunk of the truth once per batch (8x8 at 64x64: 4 sequences)
        cfg = replace(config, batch_size=max(1, min(config.batch_size, 2**27 // (steps * onehot.numel()))))
        ev = Evaluator(ds, cfg)
        for start, stop in _batches(ev.n, cfg.batch_size):
            gamma = onehot.expand(stop - start, steps, -1, -1, -1).contiguous()   # (B, T, K, H, W)
            ev.update(start, {"psi": gamma, "gamma": gamma})
        out[f"{g}x{g}"] = ev.result()
    return out


# ------------------------------------------------------------------------------- summaries
def summarise(result: dict[str, Any], keys: tuple[str, ...]) -> dict[str, float | None]:
    """The scalars of an ``Evaluator.result()`` named by ``keys``; ``simulation_<bce|iou>_<mean|last>``
    are the mean over the simulated steps and the last simulated step."""
    out: dict[str, float | None] = {}
    for key in keys:
        if key.startswith("simulation_"):
            _, metric, which = key.split("_")
            per_step = result.get(f"simulation_{metric}")
            out[key] = None if per_step is None else float(np.mean(per_step) if which == "mean" else per_step[-1])
        else:
            out[key] = result.get(key)
    return out


def fit_dataset_of(task: str) -> Dataset:
    """The canonical dataset that fits a task's floors: its own, or its train task's if test-only."""
    from rnem_bench.paths import task_dataset_path
    from rnem_bench.tasks import get_task

    t = get_task(task)
    return open_dataset(task_dataset_path(t.train_task or t.name))


def task_floors(task: str, batch_size: int = 250, limit: int | None = None) -> dict[str, Any]:
    """Every floor of a task's canonical test split, as pinned in ``leaderboard.board``:
    ``{"floors": {predictor: NEXT_KEYS + SIM_KEYS}, "grids": {"2x2": GRID_KEYS ...},
    "soft_c": {"next": c, "simulation": c}}``. ``limit``: the first sequences only (quick looks)."""
    from rnem_bench.paths import task_dataset_path

    ds = open_dataset(task_dataset_path(task))
    config = EvalConfig(batch_size=batch_size, limit=limit)
    floors = next_step_floors(ds, fit_dataset_of(task), config)
    grids = grid_floors(ds, config)
    return {
        "floors": {name: summarise(r, NEXT_KEYS + SIM_KEYS) for name, r in floors.items()},
        "grids": {name: summarise(r, GRID_KEYS) for name, r in grids.items()},
        "soft_c": floors["soft-copy"]["soft_c"],
    }


__all__ = ["blur_sigma", "gaussian_blur", "soften", "soft_constants", "mean_image", "next_step_floors",
           "grid_floors", "summarise", "fit_dataset_of", "task_floors", "PREDICTORS", "NEXT_KEYS", "SIM_KEYS",
           "GRID_KEYS"]
