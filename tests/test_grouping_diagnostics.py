"""The grouping diagnostics (merge / split rates, pair precision / recall): hand-built cases, a
brute-force recomputation, and what the Evaluator and the training harness report."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.metrics import APART_PX, GROUPING_COUNTS, SPLIT_SHARE, grouping_counts, grouping_rates


def frame(rows: list[str]) -> np.ndarray:
    """A frame from strings: '.' is 0, digits their value, 'x' 255 (overlap)."""
    return np.array([[255 if ch == "x" else (0 if ch == "." else int(ch)) for ch in row] for row in rows], dtype=np.uint8)


GROUPS = frame([
    "11......22",
    "11......22",
    "..........",
    "33.......4",
    "33.......4",
])


def rates(labels: np.ndarray, groups: np.ndarray) -> dict:
    return grouping_rates(grouping_counts(torch.from_numpy(labels), torch.from_numpy(groups)))


def test_perfect_grouping_has_no_merge_no_split_and_full_pair_scores():
    labels = GROUPS.astype(np.int64)  # each ball its own component, the background on 0
    r = rates(labels, GROUPS)
    assert r == {"merge_rate": 0.0, "merge_rate_apart": 0.0, "split_rate": 0.0, "pair_precision": 1.0, "pair_recall": 1.0}


def test_a_pure_merge_of_two_far_balls_counts_both_and_lowers_precision_only():
    labels = np.where(GROUPS == 2, 1, GROUPS).astype(np.int64)  # balls 1 and 2 (8 px apart) share component 1
    r = rates(labels, GROUPS)
    assert r["merge_rate"] == 0.5 and r["merge_rate_apart"] == 0.5 and r["split_rate"] == 0.0
    assert r["pair_recall"] == 1.0
    # ordered pairs: put together 8 * 7 (component 1) + 4 * 3 + 2 * 1 = 70, of which truly together 3 * (4 * 3) + 2 * 1 = 38
    assert r["pair_precision"] == pytest.approx(38 / 70)


def test_a_merge_of_touching_balls_is_not_counted_apart():
    groups = frame([
        "11.22",
        "11.22",
        ".....",
    ])
    labels = np.where(groups > 0, 1, 0).astype(np.int64)  # one component for both (1 px of gap)
    r = rates(labels, groups)
    assert r["merge_rate"] == 1.0 and r["merge_rate_apart"] == 0.0
    far = np.pad(groups, ((0, 0), (0, 3)))
    far[:, 3:] = 0
    far[:2, 6:8] = 2
    r = rates(np.where(far > 0, 1, 0).astype(np.int64), far)
    assert r["merge_rate_apart"] == 1.0  # 4 px apart: more than APART_PX
    assert APART_PX == 2.0


def test_a_pure_split_lowers_recall_only():
    labels = GROUPS.astype(np.int64).copy()
    labels[0, 0:2] = 5  # ball 1: half on 1, half on 5 -> share 0.5
    r = rates(labels, GROUPS)
    assert r["merge_rate"] == 0.0 and r["split_rate"] == 0.25 and r["pair_precision"] == 1.0
    # ordered pairs: truly together 3 * (4 * 3) + 2 * 1 = 38; of them together in labels: ball 1 now
    # two halves (2 * 2 * 1), balls 2 and 3 (2 * 4 * 3), ball 4 (2 * 1) = 30
    assert r["pair_recall"] == pytest.approx(30 / 38)
    assert SPLIT_SHARE == 0.8


def test_background_and_overlap_pixels_are_ignored():
    groups = GROUPS.copy()
    groups[1, 1] = 255
    labels = GROUPS.astype(np.int64).copy()
    labels[1, 1] = 3      # the overlap pixel's label does not count
    labels[2, :] = 1      # nor do background labels
    r = rates(labels, groups)
    assert r["merge_rate"] == 0.0 and r["split_rate"] == 0.0 and r["pair_precision"] == 1.0


def test_frames_without_foreground_count_nothing_and_give_none():
    empty = np.zeros((2, 5, 5), np.uint8)
    counts = grouping_counts(torch.zeros(2, 5, 5, dtype=torch.int64), torch.from_numpy(empty))
    assert set(counts) == set(GROUPING_COUNTS) and all(float(v.sum()) == 0 for v in counts.values())
    assert grouping_rates(counts) == dict.fromkeys(
        ("merge_rate", "merge_rate_apart", "split_rate", "pair_precision", "pair_recall"))


def brute_force(labels: np.ndarray, groups: np.ndarray) -> dict:
    """The definitions, pixel by pixel, for one frame."""
    balls = [j for j in range(1, 255) if (groups == j).any()]
    dominant, share, pix = {}, {}, {}
    for j in balls:
        ys, xs = np.nonzero(groups == j)
        pix[j] = list(zip(ys, xs))
        counts = np.bincount(labels[ys, xs], minlength=labels.max() + 1)
        dominant[j], share[j] = int(np.argmax(counts)), counts.max() / counts.sum()

    def apart(i, j):
        return min((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 for a in pix[i] for b in pix[j]) > APART_PX**2

    merged = sum(any(dominant[i] == dominant[j] for i in balls if i != j) for j in balls)
    merged_apart = sum(any(dominant[i] == dominant[j] and apart(i, j) for i in balls if i != j) for j in balls)
    kept = [(y, x) for y, x in zip(*np.nonzero((groups > 0) & (groups != 255)))]
    tp = fp = fn = 0
    for a, b in itertools.permutations(kept, 2):
        same_pred, same_true = labels[a] == labels[b], groups[a] == groups[b]
        tp += same_pred and same_true
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return {"balls": len(balls), "merged": merged, "merged_apart": merged_apart,
            "split": sum(share[j] < SPLIT_SHARE for j in balls),
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), n_obj=st.integers(0, 4), p_overlap=st.sampled_from([0.0, 0.1]))
def test_counts_equal_a_brute_force_computation(seed, k, n_obj, p_overlap):
    rng = np.random.default_rng(seed)
    groups = np.zeros((6, 7), np.uint8)
    for j in range(1, n_obj + 1):  # small blobs at random places
        y, x = rng.integers(0, 5), rng.integers(0, 6)
        groups[y : y + rng.integers(1, 3), x : x + rng.integers(1, 3)] = j
    groups[(rng.random(groups.shape) < p_overlap) & (groups > 0)] = 255
    labels = rng.integers(0, k, groups.shape)
    counts = grouping_counts(torch.from_numpy(labels[None]), torch.from_numpy(groups[None]))
    want = brute_force(labels, groups)
    for name in ("balls", "merged", "merged_apart", "split"):
        assert float(counts[name][0]) == want[name], name
    for name in ("precision", "recall"):
        if want[name] is None:
            assert float(counts[f"{name}_frames"][0]) == 0
        else:
            assert float(counts[f"{name}_sum"][0]) == pytest.approx(want[name])


def test_the_evaluator_reports_the_diagnostics_over_the_late_steps(tiny_balls):
    ds = open_dataset(tiny_balls)
    groups = ds.array("test", "groups")[:]
    feats = ds.array("test", "features")[:].astype(np.float32)
    K = 4
    labels = np.where(groups == 255, 0, groups)[:, 1:].astype(np.int64)
    gamma = np.eye(K, dtype=np.float32)[labels].transpose(0, 1, 4, 2, 3)
    out = Evaluator(ds, EvalConfig(sim_observe=4)).eval({"psi": gamma * feats[:, 1:, None], "gamma": gamma})
    assert out["merge_rate"] == 0.0 and out["split_rate"] == 0.0 and out["pair_precision"] == 1.0
    assert len(out["merge_rate_per_step"]) == out["steps"]
    # every object on one component: every ball is merged
    merged = np.broadcast_to(np.eye(K, dtype=np.float32)[[1]].reshape(1, 1, K, 1, 1), gamma.shape)
    out = Evaluator(ds, EvalConfig(sim_observe=4)).eval({"psi": merged, "gamma": merged})
    late = groups[:, 5:]
    assert out["merge_rate"] == pytest.approx(1.0) if (late.max(axis=(2, 3)) > 1).all() else out["merge_rate"] > 0
    assert out["pair_recall"] == 1.0 and out["pair_precision"] < 1.0
    # K = 1 predictions: no grouping, so no diagnostics, and a note says so
    out = Evaluator(ds, EvalConfig(sim_observe=4)).eval({"prediction": feats[:, 1:]})
    assert out["merge_rate"] is None and out["merge_rate_per_step"] is None
    assert any("grouping diagnostics" in note for note in out["notes"])


def test_validation_logs_and_probes_carry_the_diagnostics(tiny_balls, tmp_path):
    from rnem_bench.training.harness import train
    from rnem_bench.training.resolve import make_config

    config = make_config("rnem", str(tiny_balls), "tiny", k=3, epochs=2, batch_size=8, steps=6, device="cpu",
                         bf16=False, probe_every=2, probe_limit=8, progress=False)
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"valid_merge_rate", "valid_split_rate", "valid_pair_precision", "valid_ari_video"} <= set(log[-1])
    probes = [json.loads(line) for line in (tmp_path / "run" / "probes.jsonl").read_text().splitlines()]
    assert [p["updates"] for p in probes] == [2, 4]  # 2 updates an epoch (16 sequences / 8)
    assert all(p["n_sequences"] == 8 and 0 <= p["valid_merge_rate"] <= 1 for p in probes)
