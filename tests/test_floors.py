"""Floors (rnem_bench.evaluation.floors): trivial predictors scored through the Evaluator.

Exact answers on a hand-made dataset (two 2x2 squares sliding one pixel per frame), the blur
against the Gaussian formula, and the pinned mini-tier floors of leaderboard.board recomputed from
the canonical datasets (skipped where they are not generated; `slow`: whole test splits).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from rnem_bench.data.store import ChunkTask, DatasetWriter, open_dataset, write_chunk
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig
from rnem_bench.evaluation.floors import (
    blur_sigma, gaussian_blur, grid_floors, mean_image, next_step_floors, soft_constants, soften, task_floors,
)
from rnem_bench.metrics import WRONG_PIXEL
from rnem_bench.recipes import Recipe

SIZE, FRAMES = 8, 6  # 8x8 frames, 6 frames (5 steps)


def sliding_squares() -> tuple[np.ndarray, np.ndarray]:
    """Two sequences of two 2x2 squares (object 1 in rows 1-2, object 2 in rows 5-6), both at
    columns f, f+1 in frame f of sequence 0 and at columns 6-f, 7-f in sequence 1: every step
    the copy is wrong on 4 pixels per square. (features, groups), each (2, 6, 8, 8) uint8."""
    groups = np.zeros((2, FRAMES, SIZE, SIZE), np.uint8)
    for f in range(FRAMES):
        for seq, col in ((0, f), (1, 6 - f)):
            groups[seq, f, 1:3, col:col + 2] = 1
            groups[seq, f, 5:7, col:col + 2] = 2
    return (groups > 0).astype(np.uint8), groups


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """The same two sequences in each of the train, valid and test splits."""
    feats, groups = sliding_squares()
    recipe = Recipe("balls", {"synthetic": "sliding squares"}, seed=0, splits={"train": 2, "valid": 2, "test": 2},
                    chunk_size=2)
    path = tmp_path_factory.mktemp("squares") / "squares.zarr"
    layout = {name: (FRAMES, SIZE, SIZE) for name in ("features", "groups", "collisions")}
    writer = DatasetWriter(path, recipe, layout)
    for split in ("train", "valid", "test"):
        write_chunk(path, ChunkTask(split, 0, 0, 2), {"features": feats, "groups": groups,
                                                       "collisions": np.zeros_like(feats)})
    writer.finalize()
    return open_dataset(path)


CONFIG = EvalConfig(batch_size=1, sim_observe=2, last=5)  # late steps 2..4; simulation of frames 3, 4


def test_blur_is_the_normalised_gaussian_scaled_with_the_image():
    assert blur_sigma(64) == 3.0 and blur_sigma(32) == 1.5
    frame = torch.zeros(1, 21, 21)
    frame[0, 10, 10] = 1
    out = gaussian_blur(frame, 1.5)[0]
    x = torch.arange(-5, 6, dtype=torch.float64)  # radius ceil(3 * 1.5) = 5
    g = torch.exp(-0.5 * (x / 1.5) ** 2)
    g /= g.sum()
    expected = torch.zeros(21, 21, dtype=torch.float64)
    expected[5:16, 5:16] = g[:, None] * g[None, :]
    assert torch.allclose(out.double(), expected, atol=1e-7) and out.sum().item() == pytest.approx(1, abs=1e-6)
    assert torch.equal(gaussian_blur(torch.ones(2, 3, 21, 21), 1.5)[..., 10, 10], torch.ones(2, 3))  # interior of a flat image
    assert soften(torch.tensor([0.0, 1.0]), 0.1).tolist() == pytest.approx([0.1, 0.9])


def test_soft_constants_are_the_fraction_of_wrong_pixels_and_minimise_bce(squares):
    """8 of 64 pixels change per step: c = 1/8; the frozen frame 1 is wrong on 16 of 64 pixels of
    frames 3 and 4: c = 1/4. The BCE of the softened copy is minimal there."""
    c = soft_constants(squares, sim_observe=2, sim_steps=2)
    assert c == {"next": 1 / 8, "simulation": 1 / 4}
    assert soft_constants(squares, sim_observe=2, sim_steps=9)["simulation"] is None  # too short to simulate
    cost = lambda c: -(8 * math.log(c) + 56 * math.log(1 - c))  # noqa: E731
    assert cost(1 / 8) < min(cost(1 / 8 * 0.99), cost(1 / 8 * 1.01))
    with pytest.raises(RnemBenchError, match="no 'nope' split"):
        soft_constants(squares, split="nope")


def test_mean_image_by_hand(squares):
    """Row 1 is lit by sequence 0 at columns f, f+1 and sequence 1 at 6-f, 7-f (f = 0..5): over 12
    frames, columns 0..7 are lit 1, 3, 4, 4, 4, 4, 3, 1 times."""
    mean = mean_image(squares)
    counts = torch.tensor([1, 3, 4, 4, 4, 4, 3, 1]) / 12
    for row in (1, 2, 5, 6):
        assert torch.allclose(mean[row], counts.float())
    assert mean[[0, 3, 4, 7]].sum() == 0


def test_next_step_floors_by_hand(squares):
    out = next_step_floors(squares, config=CONFIG, sim_steps=2)
    copy, soft, mean = out["copy"], out["soft-copy"], out["mean-image"]
    # copy: 8 wrong pixels per step; each square keeps 2 of its 4 pixels: IoU 4 / 12
    assert copy["bce_last"] == pytest.approx(8 * WRONG_PIXEL) and copy["relative_bce_last"] == pytest.approx(1.0)
    assert copy["iou_per_step"] == pytest.approx([1 / 3] * 5)
    assert copy["simulation_bce"] == pytest.approx([16 * WRONG_PIXEL] * 2) == copy["baseline_simulation_bce"]
    assert copy["simulation_iou"] == [0.0, 0.0]  # the squares moved 2 and 3 pixels: no overlap
    # soft copy: c = 1/8 on 8 wrong and 56 right pixels; in simulation c = 1/4 on 16 and 48
    assert soft["soft_c"] == {"next": 1 / 8, "simulation": 1 / 4}
    assert soft["bce_per_step"] == pytest.approx([-(8 * math.log(1 / 8) + 56 * math.log(7 / 8))] * 5, rel=1e-6)
    assert soft["simulation_bce"] == pytest.approx([-(16 * math.log(1 / 4) + 48 * math.log(3 / 4))] * 2, rel=1e-6)
    assert soft["iou_per_step"] == copy["iou_per_step"]
    # mean image: below 1/2 everywhere, so it predicts no foreground; its BCE written out
    feats = squares.array("test", "features")[:]
    m = mean_image(squares).double().numpy()
    direct = -np.log(np.maximum(np.where(feats[:, 1:] == 1, m, 1 - m), 1e-6)).sum(axis=(2, 3)).mean(axis=0)
    assert mean["bce_per_step"] == pytest.approx(direct.tolist(), rel=1e-6) and mean["iou_last"] == 0.0
    assert out["blur-copy"]["blur_sigma"] == blur_sigma(SIZE) and 0 < out["blur-copy"]["bce_last"] < copy["bce_last"]


def test_grid_floors_by_hand(squares):
    """A 2x2 grid (4x4 cells) holds each square in one cell except in frame 3, where both squares
    straddle the middle column: 4 clusters of 2 pixels against 2 objects of 4, ARI 4/11. Over the
    late frames 3..5 as one clustering each object lies 2 + 10 pixels in two cells: ARI 12/17."""
    out = grid_floors(squares, CONFIG)["2x2"]
    assert adjusted_rand_score([1] * 4 + [2] * 4, [0, 0, 1, 1, 2, 2, 3, 3]) == pytest.approx(4 / 11)
    assert out["ari_per_step"] == pytest.approx([1, 1, 4 / 11, 1, 1])
    assert out["ari_mean"] == pytest.approx(48 / 55) and out["ari_last"] == 1.0
    assert out["ari_late"] == pytest.approx(26 / 33) and out["ari_video"] == pytest.approx(12 / 17)
    assert out["late_from"] == 2


def test_floors_need_matching_frames_and_groups(squares, tiny_balls):
    with pytest.raises(RnemBenchError, match="mean image"):
        next_step_floors(open_dataset(tiny_balls), fit=squares, config=CONFIG, sim_steps=2)


# ------------------------------------------------------------------ the pinned mini-tier floors
def canonical(task: str):
    """The canonical dataset of a task and of the task it trains on, or skip (not generated here)."""
    from rnem_bench.paths import task_dataset_path
    from rnem_bench.tasks import get_task

    t = get_task(task)
    for name in {task, t.train_task or task}:
        path = task_dataset_path(name)
        if not path.exists():
            pytest.skip(f"{name} is not generated ({path}); `rnem-bench generate --task {name}`")
        if open_dataset(path).fingerprint != get_task(name).recipe().fingerprint():
            pytest.skip(f"{path} is not the canonical {name} dataset")
    return open_dataset(task_dataset_path(task))


@pytest.mark.parametrize("task", ["mini-balls4", "mini-balls678", "mini-curtain"])
def test_pinned_soft_constants_are_the_canonical_valid_split(task):
    """The soft-copy constants (fitted on 1,000 valid sequences, a second): one pin of each task."""
    from rnem_bench.evaluation.floors import fit_dataset_of
    from rnem_bench.leaderboard.board import SOFT_C

    canonical(task)
    assert soft_constants(fit_dataset_of(task)) == pytest.approx(SOFT_C[task], abs=1e-8)


def test_copy_floor_is_the_pinned_copy_baseline_on_a_subset():
    """On the first 100 test sequences: the copy floor is the Evaluator's own baseline, and the
    soft copy with the pinned c beats it, as on the whole split."""
    from rnem_bench.leaderboard.board import FLOORS

    ds = canonical("mini-balls4")
    out = next_step_floors(ds, config=EvalConfig(batch_size=50, limit=100), fit_limit=200)
    assert out["copy"]["bce_last"] == pytest.approx(out["copy"]["baseline_bce_last"], rel=1e-6)
    assert out["copy"]["simulation_bce"] == pytest.approx(out["copy"]["baseline_simulation_bce"], rel=1e-6)
    assert out["soft-copy"]["bce_last"] < out["copy"]["bce_last"] / 2
    assert set(FLOORS["mini-balls4"]) == {"copy", "soft-copy", "blur-copy", "mean-image"}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["mini-balls4", "mini-balls678", "mini-curtain"])
def test_pinned_floors_are_the_canonical_test_split(task):
    """Every pinned floor and grid score of a mini task, recomputed on its whole test split."""
    from rnem_bench.leaderboard.board import COPY_BASELINES, FLOORS, GRID_ARI, GRID_SCORES, SOFT_C

    canonical(task)
    got = task_floors(task)
    assert got["soft_c"] == pytest.approx(SOFT_C[task], abs=1e-8)
    for predictor, pinned in FLOORS[task].items():
        for key, value in pinned.items():
            assert got["floors"][predictor][key] == pytest.approx(value, rel=1e-5, abs=2e-6), (predictor, key)
    for grid, pinned in GRID_SCORES[task].items():
        for key, value in pinned.items():
            assert got["grids"][grid][key] == pytest.approx(value, abs=2e-6), (grid, key)
        assert got["grids"][grid]["ari_mean"] == pytest.approx(GRID_ARI[task][grid], abs=2e-6)
    assert got["floors"]["copy"]["bce_last"] == pytest.approx(COPY_BASELINES[task]["bce_last"], rel=1e-6)


def test_every_pinned_task_has_each_floor_and_agrees_with_the_other_pins():
    """Without data: each task with pinned floors (the paper tier's were computed once by
    benchmarks/scores_vs_floors.py, the mini tier's are recomputed above) pins every predictor, its
    soft constants and the grids of GRID_ARI, and its copy floor is its pinned copy baseline."""
    from rnem_bench.leaderboard.board import COPY_BASELINES, FLOORS, GRID_ARI, GRID_SCORES, SOFT_C

    assert set(FLOORS) == set(SOFT_C) == set(GRID_SCORES)
    for task, floors in FLOORS.items():
        assert set(floors) == {"copy", "soft-copy", "blur-copy", "mean-image"}, task
        assert set(GRID_SCORES[task]) == set(GRID_ARI[task]), task
        for key in ("bce_last", "bce_last10"):
            assert floors["copy"][key] == pytest.approx(COPY_BASELINES[task][key], abs=1e-3), (task, key)
        # a softened copy changes the BCE, never the thresholded frame
        assert floors["soft-copy"]["iou_last"] == floors["copy"]["iou_last"], task
        assert floors["soft-copy"]["bce_last"] < floors["copy"]["bce_last"], task
