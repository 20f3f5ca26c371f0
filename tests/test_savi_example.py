"""examples/savi, an outside model on the public API: unconditional SAVi keeps the benchmark's
contracts (step t never sees frame t + 1, the simulation sees frames 0..9 only, masks sum to 1),
stops on SIGINT and resumes to the same weights, and goes the whole way on a tiny dataset: train,
write predictions, `rnem-bench score`, `rnem-bench submit` to a scratch board, `leaderboard`.

Tiny models (slot size 16, 8 channels) on one thread: a few seconds in all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import zarr

from conftest import cli_in_process
from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation.results import read_result
from rnem_bench.tasks import TASKS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "savi"
TINY_SPLITS = {"train": 16, "valid": 8, "test": 8}
TINY_MODEL = {"slot_size": 16, "enc_channels": [8, 8], "enc_strides": [1, 2], "enc_mlp_hidden": 16,
              "corrector_mlp_hidden": 16, "predictor_heads": 2, "predictor_mlp_hidden": 16,
              "dec_channels": [8, 8]}


@pytest.fixture(scope="module")
def savi():
    """The example's modules, imported as its scripts import each other (from their folder)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import curves
        import model
        import show
        import train
        yield SimpleNamespace(model=model, train=train, curves=curves, show=show)
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in ("model", "train", "curves", "show"):
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory) -> Path:
    """mini-balls4's recipe with 16/8/8 sequences (21 frames of 32x32, so the 10 + 10 simulation fits)."""
    recipe = TASKS["mini-balls4"].recipe(splits=TINY_SPLITS)
    return generate_dataset(recipe, tmp_path_factory.mktemp("savi") / "tiny.zarr", workers=1, progress=False)


def tiny_config(savi, dataset: Path, out: Path, **overrides):
    cfg, _, _ = savi.train.parse_args(["--task", str(dataset), "--out", str(out), "--updates", "4", "--batch-size", "4",
                                       "--window", "3", "--valid-limit", "4", "--log-every", "2", "--save-every", "100",
                                       "--model", json.dumps(TINY_MODEL)])
    return dataclasses.replace(cfg, **overrides)


class FrameArrays:
    """A stand-in dataset for predict_split: only ``array(split, "features")``."""

    def __init__(self, features: np.ndarray):
        self.features = features

    def array(self, split: str, name: str) -> np.ndarray:
        return self.features


def test_predictions_never_see_the_frames_they_predict(savi):
    torch.manual_seed(0)
    model = savi.model.SAVi(savi.model.SAViConfig(**TINY_MODEL)).eval()
    x = (np.random.default_rng(0).random((3, 21, 32, 32)) < 0.1).astype(np.uint8)
    a = savi.train.predict_split(model, FrameArrays(x), k=4, noise=0.2, seed=5)
    assert a["prediction"].shape == (3, 20, 32, 32) and a["gamma"].shape == (3, 20, 4, 32, 32)
    assert a["simulation"].shape == (3, 10, 32, 32)
    for name in ("prediction", "simulation"):
        assert 0 <= a[name].min() and a[name].max() <= 1
    np.testing.assert_allclose(a["gamma"].astype(np.float32).sum(2), 1.0, atol=3e-3)  # stored as float16

    y = x.copy()
    y[:, 20] = 1 - y[:, 20]                     # the last frame: predicted, never an input
    b = savi.train.predict_split(model, FrameArrays(y), k=4, noise=0.2, seed=5)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    y[:, 10:] = 1 - y[:, 10:]                   # frames 10..20: the simulation sees frames 0..9 only
    c = savi.train.predict_split(model, FrameArrays(y), k=4, noise=0.2, seed=5)
    np.testing.assert_array_equal(a["simulation"], c["simulation"])
    np.testing.assert_array_equal(a["prediction"][:, :10], c["prediction"][:, :10])  # step t sees frames 0..t
    assert not np.array_equal(a["prediction"][:, 10:], c["prediction"][:, 10:])

    # the same weights at another K: slots are drawn from one learned Gaussian
    d = savi.train.predict_split(model, FrameArrays(x), k=7, noise=0.2, seed=5)
    assert d["gamma"].shape[2] == 7


def test_sigint_saves_and_resume_reaches_the_same_weights(savi, tiny_task, tmp_path):
    straight = tiny_config(savi, tiny_task, tmp_path / "straight")
    assert savi.train.train(straight) == 0

    def interrupt(update: int) -> None:
        if update == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the handler lets the update finish

    cut = tiny_config(savi, tiny_task, tmp_path / "cut")
    assert savi.train.train(cut, after_update=interrupt) == 130
    last = torch.load(tmp_path / "cut" / "ckpt_last.pt", weights_only=True)
    assert last["state"]["update"] == 2
    first_segment = last["state"]["train_seconds"]
    with pytest.raises(SystemExit, match="--resume"):
        savi.train.train(cut)                    # an existing run is never overwritten
    assert savi.train.train(cut, resume=True) == 0

    a = torch.load(tmp_path / "straight" / "ckpt_last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "ckpt_last.pt", weights_only=True)
    assert b["state"]["update"] == 4
    assert b["state"]["train_seconds"] > first_segment > 0  # the resumed segment adds to the first
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    best = torch.load(tmp_path / "cut" / "ckpt_best.pt", weights_only=True)
    assert best["update"] == 4 and np.isfinite(best["valid"]["valid_loss"])


def test_train_predict_score_submit(savi, tiny_task, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert savi.train.train(tiny_config(savi, tiny_task, run, updates=3)) == 0
    preds = savi.train.write_run_predictions(run, "mini-balls4", dataset=str(tiny_task), k=5)
    store = zarr.open_group(str(preds), mode="r")
    assert store["prediction"].shape == (8, 20, 32, 32) and store["gamma"].shape == (8, 20, 5, 32, 32)
    assert store["simulation"].shape == (8, 10, 32, 32)
    assert store.attrs["model"] == "savi" and store.attrs["seeds"] == [0] and store.attrs["parameters"] > 0

    result_path = tmp_path / "result.json"
    r = cli_in_process(monkeypatch, capsys, "score", str(preds), "--task", "mini-balls4",
                       "--dataset", str(tiny_task), "--out", str(result_path))
    # `prediction` with `gamma` (the masks it was composed with): the Evaluator's layout for slot
    # models (issue 33); BCE and IoU on the prediction, ARI on argmax gamma, K from gamma.
    assert r.returncode == 0, r.stderr[-2000:]
    result = read_result(result_path)
    m = result["metrics"]
    assert m["n_sequences"] == 8 and m["steps"] == 20 and len(m["simulation_bce"]) == 10
    assert m["bce_last"] > 0 and -1 <= m["ari_mean"] <= 1       # ARI from argmax gamma
    assert result["model"]["name"] == "savi" and result["model"]["source"] == "external"
    assert result["model"]["k"] == 5
    # how it was trained travels from the predictions store into the result (the board notes a
    # training task or K other than the scored one)
    training = dict(result["training"])
    assert training.pop("wall_time_s") > 0  # training wall time, summed over resumed segments
    assert training == {"task": str(tiny_task), "k": 5, "batch_size": 4, "updates": 3}

    # On the tiny data the real board refuses it (not the canonical test split) ...
    board = tmp_path / "board"
    r = cli_in_process(monkeypatch, capsys, "submit", str(result_path), "--board", str(board))
    assert r.returncode == 2 and "dataset.fingerprint" in r.stderr
    # ... so a scratch board takes the tiny recipe as mini-balls4's canonical one, with its copy baselines.
    from rnem_bench.evaluation.evaluator import copy_baselines
    from rnem_bench.leaderboard import board as rules

    monkeypatch.setitem(TASKS, "mini-balls4", dataclasses.replace(TASKS["mini-balls4"], splits=TINY_SPLITS))
    monkeypatch.setitem(rules.COPY_BASELINES, "mini-balls4", copy_baselines(open_dataset(tiny_task)))
    r = cli_in_process(monkeypatch, capsys, "submit", str(result_path), "--board", str(board))
    assert r.returncode == 0, r.stderr[-2000:]
    assert [e["model"]["name"] for e in rules.entries(board, "mini-balls4")] == ["savi"]
    r = cli_in_process(monkeypatch, capsys, "leaderboard", "mini-balls4", "--board", str(board), "--format", "markdown")
    assert r.returncode == 0 and "savi" in r.stdout

    # The training curves are drawn from the run's log.jsonl (examples/savi/curves.py), and its
    # predictions and masks on validation sequences (examples/savi/show.py).
    png = savi.show.draw(run, str(tiny_task), tmp_path / "show.png", sequences=2, steps=(1, 3))
    assert png.read_bytes()[:4] == b"\x89PNG"
    train_lines, valid_lines = savi.curves.read_log(run)
    assert [e["update"] for e in train_lines] == [2, 3] and len(valid_lines) == 1
    png = savi.curves.plot([run], tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
