"""The Evaluator as a whole: equal to a direct per-sequence computation, streaming in any batch
size, lazy Zarr input, datasets without groups (invaders), misuse of the streaming interface."""

from __future__ import annotations

import re

import numpy as np
import pytest
import zarr
from sklearn.metrics import adjusted_rand_score

from rnem_bench.data.store import ChunkTask, DatasetWriter, open_dataset, write_chunk
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.recipes import Recipe

K = 3


def random_mixture(n: int, steps: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    psi = rng.random((n, steps, K, size, size), dtype=np.float32)
    gamma = rng.random((n, steps, K, size, size), dtype=np.float32)
    return {"psi": psi, "gamma": gamma / gamma.sum(axis=2, keepdims=True)}


def direct_metrics(ds, preds: dict[str, np.ndarray]) -> dict[str, float]:
    """The protocol written out sequence by sequence in float64 numpy, with sklearn's ARI."""
    feats = ds.array("test", "features")[:].astype(np.float64)
    groups, coll = ds.array("test", "groups")[:], ds.array("test", "collisions")[:]
    frame = preds["psi"].astype(np.float64).max(axis=2)        # paper footnote 4: max_k psi_k
    target = feats[:, 1:]

    def bce(p):  # (N, T, H, W) -> (N, T), the probability of the true value floored at 1e-6
        q = np.where(target == 1, p, 1 - p)
        return -np.log(np.maximum(q, 1e-6))

    model, base = bce(frame), bce(feats[:, :-1])
    mask = coll[:, 1:] == 1
    labels = preds["gamma"].argmax(axis=2)
    ari = np.array([[adjusted_rand_score(groups[i, t + 1][keep], labels[i, t][keep])
                     for t in range(target.shape[1])
                     for keep in [(groups[i, t + 1] != 0) & (groups[i, t + 1] != 255)]]
                    for i in range(len(feats))])
    return {
        "bce_last": model.sum(axis=(2, 3))[:, -1].mean(),
        "relative_bce_last": model.sum(axis=(2, 3))[:, -1].mean() / base.sum(axis=(2, 3))[:, -1].mean(),
        "relational_bce_last": (model * mask).sum(axis=(2, 3))[:, -1].mean(),
        "baseline_relational_bce_last": (base * mask).sum(axis=(2, 3))[:, -1].mean(),
        "bce_last5": model.sum(axis=(2, 3))[:, -5:].mean(),
        "ari_mean": ari.mean(),
        "ari_last": ari[:, -1].mean(),
    }


def test_evaluator_equals_direct_computation(tiny_balls):
    ds = open_dataset(tiny_balls)
    preds = random_mixture(16, 8, 64)
    out = Evaluator(ds, EvalConfig(batch_size=6, last=5)).eval(preds)
    for name, value in direct_metrics(ds, preds).items():
        assert out[name] == pytest.approx(value, rel=1e-5), name
    assert out["k"] == K and out["n_sequences"] == 16 and out["steps"] == 8
    assert len(out["ari_per_step"]) == len(out["bce_per_step"]) == 8


def noisy_oracle(ds, seed: int = 0) -> dict[str, np.ndarray]:
    """Mixture predictions near the truth: each object on its own component (ids modulo K),
    a fifth of the pixels relabelled at random, psi the true next frame plus noise; and a noisy
    simulation of frames 5..7 after observing frames 0..3."""
    rng = np.random.default_rng(seed)
    feats = ds.array("test", "features")[:].astype(np.float32)
    groups = ds.array("test", "groups")[:, 1:]
    labels = np.where(groups == 255, 0, groups) % K
    labels = np.where(rng.random(labels.shape) < 0.2, rng.integers(0, K, labels.shape), labels)
    gamma = np.ascontiguousarray(np.eye(K, dtype=np.float32)[labels].transpose(0, 1, 4, 2, 3))
    psi = np.clip(gamma * feats[:, 1:, None] + rng.normal(0, 0.3, gamma.shape).astype(np.float32), 0, 1)
    sim = np.clip(feats[:, 5:8] + rng.normal(0, 0.4, feats[:, 5:8].shape).astype(np.float32), 0, 1)
    return {"psi": psi, "gamma": gamma, "simulation": sim}


def direct_late_metrics(ds, preds: dict[str, np.ndarray], late_from: int) -> dict[str, float]:
    """The new scores written out sequence by sequence in numpy with sklearn's ARI: video ARI of
    the late frames as one clustering, per-frame ARI of the late steps, foreground IoU of frame
    and simulation."""
    feats = ds.array("test", "features")[:]
    groups = ds.array("test", "groups")[:, 1:]
    labels = preds["gamma"].argmax(axis=2)
    n, T = labels.shape[:2]

    def ari(pred, true):
        keep = (true != 0) & (true != 255)
        return adjusted_rand_score(true[keep], pred[keep])

    def iou(prob, target):
        p, t = prob > 0.5, target == 1
        return 1.0 if not (p | t).any() else (p & t).sum() / (p | t).sum()

    frame = preds["psi"].max(axis=2)
    sim = preds["simulation"]
    return {
        "ari_video": np.mean([ari(labels[i, late_from:].ravel(), groups[i, late_from:].ravel()) for i in range(n)]),
        "ari_late": np.mean([ari(labels[i, t], groups[i, t]) for i in range(n) for t in range(late_from, T)]),
        "iou_last": np.mean([iou(frame[i, -1], feats[i, -1]) for i in range(n)]),
        "iou_last5": np.mean([iou(frame[i, t], feats[i, t + 1]) for i in range(n) for t in range(T - 5, T)]),
        "simulation_iou": [np.mean([iou(sim[i, s], feats[i, 5 + s]) for i in range(n)]) for s in range(sim.shape[1])],
    }


def test_late_grouping_and_iou_equal_direct_computation(tiny_balls):
    """ari_video, ari_late (over steps sim_observe..T-1), iou_* and simulation_iou, streamed
    in uneven batches, equal the protocol written out with sklearn and numpy."""
    ds = open_dataset(tiny_balls)
    preds = noisy_oracle(ds)
    ev = Evaluator(ds, EvalConfig(sim_observe=4, last=5))
    for start, stop in [(0, 3), (3, 4), (4, 16)]:
        ev.update(start, {name: v[start:stop] for name, v in preds.items()})
    out = ev.result()
    direct = direct_late_metrics(ds, preds, late_from=4)
    for name, value in direct.items():
        assert out[name] == pytest.approx(value, rel=1e-9), name
    assert out["late_from"] == 4 and len(out["iou_per_step"]) == 8
    assert out["ari_late"] == pytest.approx(np.mean(out["ari_per_step"][4:]), rel=1e-12)
    assert 0.2 < out["ari_video"] < 0.95  # neither trivial nor perfect


def test_without_late_steps_the_late_scores_are_none_and_said_so(tiny_balls):
    """tiny_balls has 8 steps: with the default sim_observe = 10 no step is late."""
    preds = random_mixture(16, 8, 64, seed=6)
    out = Evaluator(tiny_balls).eval(preds)
    assert out["late_from"] is None and out["ari_video"] is None and out["ari_late"] is None
    assert any("no late steps" in note for note in out["notes"]) and out["ari_mean"] is not None
    k1 = Evaluator(tiny_balls, EvalConfig(sim_observe=4)).eval({"prediction": preds["psi"][:, :, 0]})
    assert k1["late_from"] == 4 and k1["ari_video"] is None and k1["iou_last"] >= 0


def test_streaming_in_uneven_batches_equals_one_call(tiny_balls):
    ds = open_dataset(tiny_balls)
    preds = random_mixture(16, 8, 64, seed=1)
    whole = Evaluator(ds).eval(preds)
    ev = Evaluator(ds)
    for start, stop in [(0, 1), (1, 8), (8, 16)]:
        ev.update(start, {name: v[start:stop] for name, v in preds.items()})
    streamed = ev.result()
    for name in ("bce_last", "relative_bce_last", "relational_bce_last", "ari_mean", "ari_last", "iou_last"):
        assert streamed[name] == pytest.approx(whole[name], rel=1e-9), name


def test_lazy_zarr_predictions_equal_numpy(tiny_balls, tmp_path):
    preds = random_mixture(16, 8, 64, seed=2)
    root = zarr.open_group(str(tmp_path / "p.zarr"), mode="w")
    lazy = {name: root.create_array(name, data=v, chunks=(5, *v.shape[1:])) for name, v in preds.items()}
    a = Evaluator(tiny_balls, EvalConfig(batch_size=4)).eval(lazy)
    b = Evaluator(tiny_balls).eval(preds)
    assert a["bce_last"] == pytest.approx(b["bce_last"]) and a["ari_mean"] == pytest.approx(b["ari_mean"])


def test_limit_scores_a_prefix(tiny_balls):
    preds = random_mixture(16, 8, 64, seed=3)
    part = Evaluator(tiny_balls, EvalConfig(limit=4)).eval({k: v[:4] for k, v in preds.items()})
    assert part["n_sequences"] == 4


def test_k1_psi_gamma_equals_a_single_frame_and_reports_no_ari(tiny_balls):
    """rnn/lstm give psi and gamma with K=1: scored like one frame per step, no ARI."""
    frame = np.random.default_rng(4).random((16, 8, 64, 64), dtype=np.float32)
    k1 = Evaluator(tiny_balls).eval({"psi": frame[:, :, None], "gamma": np.ones_like(frame[:, :, None])})
    single = Evaluator(tiny_balls).eval({"prediction": frame})
    assert k1["bce_last"] == single["bce_last"] and k1["k"] == single["k"] == 1
    assert k1["ari_mean"] is None and any("K=1" in note for note in k1["notes"])


def test_streaming_misuse_is_refused(tiny_balls):
    preds = random_mixture(16, 8, 64)
    ev = Evaluator(tiny_balls)
    with pytest.raises(RnemBenchError, match="in order: expected sequence 0, got 4"):
        ev.update(4, {name: v[4:8] for name, v in preds.items()})
    ev.update(0, {name: v[:8] for name, v in preds.items()})
    with pytest.raises(RnemBenchError, match="cover 8 of 16"):
        ev.result()
    with pytest.raises(RnemBenchError, match="gamma has shape"):
        ev.update(8, {"psi": preds["psi"][8:], "gamma": preds["gamma"][8:, :, :2]})


def test_a_refused_batch_leaves_the_sums_untouched(tiny_balls):
    preds = random_mixture(16, 8, 64)
    sim = np.zeros((16, 3, 64, 64), np.float32)
    ev = Evaluator(tiny_balls, EvalConfig(sim_observe=4))
    bad = {**{name: v[:8] for name, v in preds.items()}, "simulation": np.full((8, 3, 64, 64), np.nan, np.float32)}
    with pytest.raises(RnemBenchError, match="simulation contains NaN"):
        ev.update(0, bad)
    for start in (0, 8):  # the same batch again, now valid, then the rest
        ev.update(start, {**{name: v[start:start + 8] for name, v in preds.items()}, "simulation": sim[start:start + 8]})
    expected = Evaluator(tiny_balls, EvalConfig(sim_observe=4)).eval({**preds, "simulation": sim})
    assert ev.result()["bce_last"] == pytest.approx(expected["bce_last"], rel=1e-12)


class LazyShapeOnly:
    """An array that declares a shape and fails if anything reads it (a huge or broken store)."""

    def __init__(self, shape):
        self.shape = shape

    def __getitem__(self, index):
        raise AssertionError("data was read before the shape was checked")


@pytest.mark.parametrize(
    "preds,message",
    [
        ({"prediction": LazyShapeOnly((16, 8, 64000, 64000))}, "prediction must be (N, 8, 64, 64)"),
        ({"psi": LazyShapeOnly((16, 8, 0, 64, 64)), "gamma": LazyShapeOnly((16, 8, 0, 64, 64))}, "1 <= K <= 64"),
        ({"prediction": LazyShapeOnly((15, 8, 64, 64))}, "covers 15 sequences"),
        ({"prediction": LazyShapeOnly((16, 8, 64, 64)), "simulation": LazyShapeOnly((16, 9, 64, 64))}, "simulation of 9"),
        ({"gamma": LazyShapeOnly((16, 8, 3, 64, 64))}, "need 'psi'"),
        ({"prediction": 0.5}, "must be an array"),
        ({"prediction": np.full((16, 8, 64, 64), "x")}, "dtype <U1"),
    ],
)
def test_shapes_are_checked_before_any_data_is_read(tiny_balls, preds, message):
    with pytest.raises(RnemBenchError, match=re.escape(message)):
        Evaluator(tiny_balls).eval(preds)


def test_simulation_longer_than_the_sequence_is_refused(tiny_balls):
    feats = open_dataset(tiny_balls).array("test", "features")[:].astype(np.float32)
    preds = {"prediction": feats[:, :-1], "simulation": feats[:, :5]}  # 4 observed + 5 > 8 steps
    with pytest.raises(RnemBenchError, match="simulation of 5 steps after 4 observed frames"):
        Evaluator(tiny_balls, EvalConfig(sim_observe=4)).eval(preds)


@pytest.fixture(scope="module")
def no_groups_dataset(tmp_path_factory):
    """An invaders-like dataset: frames and actions only, no groups and no collision masks."""
    recipe = Recipe("invaders", {"synthetic": True}, seed=0, splits={"test": 6}, chunk_size=6)
    path = tmp_path_factory.mktemp("ale") / "ale.zarr"
    writer = DatasetWriter(path, recipe, {"features": (5, 84, 84), "actions": (5,)})
    rng = np.random.default_rng(0)
    write_chunk(path, ChunkTask("test", 0, 0, 6), {"features": (rng.random((6, 5, 84, 84)) > 0.9).astype(np.uint8),
                                                    "actions": rng.integers(0, 5, (6, 5)).astype(np.int16)})
    writer.finalize()
    return path


def test_dataset_without_groups_reports_no_ari_and_says_so(no_groups_dataset):
    rng = np.random.default_rng(0)
    psi = rng.random((6, 4, 4, 84, 84), dtype=np.float32)
    out = Evaluator(no_groups_dataset).eval({"psi": psi, "gamma": np.full_like(psi, 0.25)})
    assert out["ari_mean"] is None and out["ari_last"] is None and "ari_per_step" not in out
    assert any("no groups" in note for note in out["notes"])
    assert "relational_bce_last" not in out and any("relational BCE not reported" in n for n in out["notes"])
    assert out["bce_last"] > 0 and out["relative_bce_last"] > 0


@pytest.mark.gpu
def test_metrics_on_cuda_equal_cpu(tiny_balls):
    """EvalConfig(device="cuda") (what `evaluate --device cuda` uses) scores exactly like the CPU."""
    feats = open_dataset(tiny_balls).array("test", "features")[:].astype(np.float32)
    preds = {**random_mixture(16, 8, 64, seed=5), "simulation": feats[:, 5:8]}
    cpu = Evaluator(tiny_balls, EvalConfig(sim_observe=4)).eval(preds)
    gpu = Evaluator(tiny_balls, EvalConfig(sim_observe=4, device="cuda")).eval(preds)
    for name in ("bce_last", "baseline_bce_last", "relational_bce_last", "ari_mean", "ari_last", "ari_video",
                 "ari_late", "iou_last"):
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-5), name
    assert gpu["simulation_bce"] == pytest.approx(cpu["simulation_bce"], rel=1e-5)
    assert gpu["simulation_iou"] == pytest.approx(cpu["simulation_iou"], rel=1e-5)
