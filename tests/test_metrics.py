"""Metrics: ARI (per frame and per video) against scikit-learn, BCE, mean best overlap and
foreground IoU against direct computation, the evaluator's invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from rnem_bench.data.store import open_dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.metrics import (
    adjusted_rand_index, bce, foreground_iou, frame_and_video_ari, mean_best_overlap, video_adjusted_rand_index,
)


def sklearn_ari(pred: np.ndarray, true: np.ndarray) -> float:
    keep = (true != 0) & (true != 255)
    return adjusted_rand_score(true[keep], pred[keep])


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 9), n_obj=st.integers(0, 8), size=st.integers(1, 12),
       p_ignore=st.sampled_from([0.0, 0.3, 0.9, 1.0]))
def test_ari_equals_sklearn_on_random_frames(seed, k, n_obj, size, p_ignore):
    rng = np.random.default_rng(seed)
    true = rng.integers(1, n_obj + 1, (size, size)) if n_obj else np.zeros((size, size), int)
    true = np.where(rng.random((size, size)) < p_ignore, rng.choice([0, 255], (size, size)), true).astype(np.uint8)
    pred = rng.integers(0, k, (size, size))
    ours = adjusted_rand_index(torch.from_numpy(pred)[None], torch.from_numpy(true)[None])[0].item()
    assert ours == pytest.approx(sklearn_ari(pred, true), abs=1e-10)


@pytest.mark.parametrize("case", ["one_cluster", "all_ignored", "k_larger", "perfect", "permuted", "each_own", "split"])
def test_ari_adversarial_cases(case):
    true = np.zeros((8, 8), np.uint8)
    true[:4, :4], true[4:, 4:], true[:2, 6:] = 1, 2, 255
    pred = {
        "one_cluster": np.zeros((8, 8), int),
        "all_ignored": np.zeros((8, 8), int),
        "k_larger": np.random.default_rng(0).integers(0, 9, (8, 8)),
        "perfect": true.astype(int) % 255,
        "permuted": np.where(true == 1, 7, np.where(true == 2, 3, 0)),
        "each_own": np.arange(64).reshape(8, 8) % 9,
        "split": np.where(true == 1, np.arange(64).reshape(8, 8) % 2, 5),
    }[case]
    if case == "all_ignored":
        true = np.where(true > 0, 255, 0).astype(np.uint8)
    ours = adjusted_rand_index(torch.from_numpy(pred)[None], torch.from_numpy(true)[None])[0].item()
    assert ours == pytest.approx(sklearn_ari(pred, true), abs=1e-12)
    if case in ("perfect", "permuted", "all_ignored"):
        assert ours == 1.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), n_obj=st.integers(0, 6), frames=st.integers(1, 5),
       size=st.integers(1, 8))
def test_video_ari_equals_sklearn_on_the_concatenated_frames(seed, k, n_obj, frames, size):
    """The video ARI of a sequence is sklearn's ARI of the kept pixels of all its frames together."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_obj + 1, (3, frames, size, size))
    true = np.where(rng.random(true.shape) < 0.2, 255, true).astype(np.uint8)
    pred = rng.integers(0, k, true.shape)
    ours = video_adjusted_rand_index(torch.from_numpy(pred), torch.from_numpy(true))
    assert ours.shape == (3,)
    for i in range(3):
        assert ours[i].item() == pytest.approx(sklearn_ari(pred[i].ravel(), true[i].ravel()), abs=1e-10)


def test_frame_and_video_ari_from_shared_tables_equal_the_separate_scores():
    """The evaluator's one pass (per-frame tables summed into a video's) equals the two functions."""
    rng = np.random.default_rng(7)
    true = rng.integers(0, 5, (3, 6, 9, 9))
    true = torch.from_numpy(np.where(rng.random(true.shape) < 0.2, 255, true).astype(np.uint8))
    pred = torch.from_numpy(rng.integers(0, 4, true.shape)).int()
    frames, video = frame_and_video_ari(pred, true, late_from=2)
    assert torch.equal(frames, adjusted_rand_index(pred, true))
    assert torch.allclose(video, video_adjusted_rand_index(pred[:, 2:], true[:, 2:]), rtol=0, atol=1e-12)
    with pytest.raises(RnemBenchError, match="late_from must be in"):
        frame_and_video_ari(pred, true, late_from=6)


def test_video_ari_needs_a_component_to_keep_its_object():
    """Two frames, each perfectly grouped; swapping the component ids between the frames keeps the
    per-frame ARI at 1 and drops the video ARI; a fixed split of the image scores 1 per frame while
    the objects stay in their halves, less once they cross."""
    true = np.zeros((2, 4, 4), np.uint8)
    true[:, :, :2], true[:, :, 2:] = 1, 2
    same = np.where(true == 1, 0, 1)
    swapped = same.copy()
    swapped[1] = 1 - swapped[1]
    t = torch.from_numpy(true)
    assert adjusted_rand_index(torch.from_numpy(swapped), t).tolist() == [1.0, 1.0]
    assert video_adjusted_rand_index(torch.from_numpy(same), t).item() == 1.0
    assert video_adjusted_rand_index(torch.from_numpy(swapped), t).item() == pytest.approx(
        sklearn_ari(swapped.ravel(), true.ravel()))
    assert video_adjusted_rand_index(torch.from_numpy(swapped), t).item() < 0
    with pytest.raises(RnemBenchError, match="one shape"):
        video_adjusted_rand_index(torch.from_numpy(same), t[:1])


def test_mean_best_overlap_by_hand():
    """Object 1 is the 2x2 top-left square, object 2 the pixel (3, 0), (3, 3) is an overlap pixel.
    Segment 1 is the top two rows (8 pixels, 4 of them object 1), segment 0 the rest."""
    true = torch.zeros(4, 4, dtype=torch.uint8)
    true[:2, :2], true[3, 0], true[3, 3] = 1, 2, 255
    pred = torch.zeros(4, 4, dtype=torch.int32)
    pred[:2] = 1
    # object 1: best IoU 4 / 8 (segment 1); object 2: 1 / 8 (segment 0 holds it and 7 more pixels)
    assert mean_best_overlap(pred[None], true[None]).item() == pytest.approx((4 / 8 + 1 / 8) / 2)
    # foreground only: segment 1 shrinks to object 1 (IoU 1), segment 0 to object 2 and the overlap pixel (1 / 2)
    assert mean_best_overlap(pred[None], true[None], foreground_only=True).item() == pytest.approx((1 + 1 / 2) / 2)
    perfect = torch.where(true == 255, 0, true).int()  # the overlap pixel goes to the background segment 0
    assert mean_best_overlap(perfect[None], true[None]).item() == 1.0
    perfect[3, 3] = 2  # the overlap pixel joins object 2's segment, which it does not belong to: 1 / 2
    assert mean_best_overlap(perfect[None], true[None]).item() == pytest.approx((4 / 4 + 1 / 2) / 2)
    assert mean_best_overlap(pred[None], torch.zeros_like(true)[None]).isnan().item()  # no object: NaN


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), n_obj=st.integers(0, 5), size=st.integers(1, 8),
       foreground_only=st.booleans())
def test_mean_best_overlap_equals_a_loop_over_objects_and_segments(seed, k, n_obj, size, foreground_only):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, n_obj + 1, (4, size, size))
    true = np.where(rng.random(true.shape) < 0.2, 255, true).astype(np.uint8)
    pred = rng.integers(0, k, true.shape)
    ours = mean_best_overlap(torch.from_numpy(pred), torch.from_numpy(true), foreground_only).numpy()
    for f in range(4):
        keep = true[f] != 0 if foreground_only else np.ones_like(true[f], bool)
        ious = [max(((pred[f] == c) & (true[f] == j)).sum() / ((pred[f] == c) & keep | (true[f] == j)).sum()
                    for c in range(k)) for j in range(1, n_obj + 1) if (true[f] == j).any()]
        if ious:
            assert ours[f] == pytest.approx(np.mean(ious), abs=1e-12)
        else:
            assert np.isnan(ours[f])


def test_foreground_iou_by_hand():
    target = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.uint8)
    pred = torch.tensor([[[0.9, 0.5], [0.6, 0.0]], [[0.2, 0.0], [0.0, 0.5]], [[0.0, 0.0], [0.0, 0.7]]])
    # frame 0: predicted {(0,0), (1,0)} (0.5 is not > 0.5), true {(0,0), (0,1)}: 1 / 3;
    # frame 1: both empty: 1; frame 2: a predicted pixel and no true one: 0
    assert foreground_iou(pred, target).tolist() == pytest.approx([1 / 3, 1.0, 0.0])


def test_bce_matches_direct_computation():
    pred = torch.tensor([[[0.9, 0.2], [0.5, 1.0]]])
    target = torch.tensor([[[1, 0], [1, 0]]], dtype=torch.uint8)
    direct = -(math.log(0.9) + math.log(0.8) + math.log(0.5) + math.log(1e-6))
    assert bce(pred, target).item() == pytest.approx(direct, rel=1e-7)
    mask = torch.tensor([[[1, 0], [0, 1]]])
    assert bce(pred, target, mask).item() == pytest.approx(-(math.log(0.9) + math.log(1e-6)), rel=1e-7)


def test_perfect_prediction_scores_zero_bce_and_ari_one(tiny_balls):
    ds = open_dataset(tiny_balls)
    feats = ds.array("test", "features")[:].astype(np.float32)
    groups = ds.array("test", "groups")[:]
    n, T1, H, W = feats.shape
    K = 4
    # gamma puts each object's pixels on its own component; psi_k = that object's pixels
    labels = np.where(groups == 255, 0, groups)[:, 1:].astype(np.int64)
    gamma = np.eye(K, dtype=np.float32)[labels].transpose(0, 1, 4, 2, 3)
    psi = gamma * feats[:, 1:, None]
    sim = feats[:, 5:8]  # frames 5..7 after observing frames 0..3
    out = Evaluator(ds, EvalConfig(sim_observe=4)).eval({"psi": psi, "gamma": gamma, "simulation": sim})
    assert out["bce_last"] == 0.0 and out["relational_bce_last"] == 0.0 and out["bce_last8"] == 0.0
    assert out["ari_mean"] == pytest.approx(1.0) and out["ari_last"] == pytest.approx(1.0)
    assert out["relative_bce_last"] == 0.0 and out["relative_relational_bce_last"] == 0.0
    assert out["simulation_bce"] == [0.0] * 3
    # the new scores: every late step (4..7) grouped perfectly, frames and simulation exact
    assert out["late_from"] == 4 and out["ari_video"] == 1.0 and out["ari_late"] == 1.0 and "mbo" not in out
    assert out["iou_last"] == 1.0 and out["iou_last8"] == 1.0 and out["simulation_iou"] == [1.0] * 3


def test_grid_ari_baseline_is_what_the_evaluator_gives_a_grid_shaped_model(tiny_balls):
    """grid_ari_baselines averages over the same frames as a model's ari_mean: a "model" whose gamma
    is a fixed n x n grid scores exactly the baseline's n x n entry."""
    from rnem_bench.evaluation.evaluator import grid_ari_baselines
    from rnem_bench.metrics import grid_partition

    cells = grid_partition(5, 7, 3)
    assert cells.shape == (5, 7) and sorted(cells.unique().tolist()) == list(range(9))
    assert cells[0, 0] == 0 and cells[-1, -1] == 8 and cells[2, 3] == 4
    ds = open_dataset(tiny_balls)
    n, T1, H, W = ds.array("test", "features").shape
    baselines = grid_ari_baselines(ds, batch_size=3)
    assert set(baselines) == {"2x2", "3x3", "4x4"}
    for g in (2, 3):
        gamma = np.eye(g * g, dtype=np.float32)[grid_partition(H, W, g).numpy()].transpose(2, 0, 1)
        gamma = np.broadcast_to(gamma, (n, T1 - 1, g * g, H, W))
        out = Evaluator(ds, EvalConfig(batch_size=4)).eval({"psi": np.zeros_like(gamma), "gamma": gamma})
        assert out["ari_mean"] == pytest.approx(baselines[f"{g}x{g}"], abs=1e-6)


def test_copy_baseline_scores_relative_one(tiny_balls):
    ds = open_dataset(tiny_balls)
    feats = ds.array("test", "features")[:]
    out = Evaluator(ds, EvalConfig(batch_size=5)).eval({"prediction": feats[:, :-1].astype(np.float32)})
    assert out["relative_bce_last"] == pytest.approx(1.0)
    assert out["relative_bce_last8"] == pytest.approx(1.0)
    assert out["relative_relational_bce_last"] == pytest.approx(1.0)
    assert out["ari_mean"] is None and any("ARI" in note for note in out["notes"])
    # the baseline's absolute BCE equals a direct computation over the whole split
    direct = bce(torch.from_numpy(feats[:, -2]).float(), torch.from_numpy(feats[:, -1])).mean().item()
    assert out["baseline_bce_last"] == pytest.approx(direct)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda p: {"prediction": p[:, :-1]}, "must be (N, 8"),
        (lambda p: {"prediction": np.where(p > 0.5, np.nan, p)}, "NaN"),
        (lambda p: {"prediction": p * 2}, "outside [0, 1]"),
        (lambda p: {"prediction": p[:-1]}, "covers 15 sequences"),
        (lambda p: {"psi": p[:, :, None].repeat(3, 2)}, "need 'gamma'"),
        (lambda p: {}, "need 'psi'"),
        (lambda p: {"prediction": p.astype(np.int64)}, "float"),
    ],
)
def test_bad_predictions_are_refused_by_name(tiny_balls, mutate, message):
    feats = open_dataset(tiny_balls).array("test", "features")[:, 1:].astype(np.float32)
    with pytest.raises(RnemBenchError, match=message.replace("[", r"\[").replace("(", r"\(")):
        Evaluator(tiny_balls).eval(mutate(feats))
