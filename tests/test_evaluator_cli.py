"""evaluate / score / show on tiny runs and predictions stores, end to end through the CLI.

The commands run in-process through the console entry point (``rnem_bench.cli.main``: the same
argument parsing, exit codes and one-line errors as the installed script) with one torch thread,
which keeps these tiny models fast on shared cores; test_leaderboard.py runs the real script once.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from conftest import cli_in_process
from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.evaluation import write_predictions
from rnem_bench.evaluation.results import read_result
from rnem_bench.generators.balls import Params
from rnem_bench.recipes import Recipe
from rnem_bench.training.harness import train
from rnem_bench.training.resolve import make_config

SIZE = 32  # 4x cheaper than 64x64; the evaluator and figures do not care


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """conftest's fixture, widened to the module so that it also covers the training in `rnem_run`."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``rnem-bench ARGS...`` in-process: (returncode, stdout, stderr) like subprocess.run."""
    return lambda *args: cli_in_process(monkeypatch, capsys, *args)


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory):
    """21 frames: long enough for 10 observed + 10 simulated steps."""
    recipe = Recipe("balls", asdict(Params(n_balls=(2, 3), steps=20, image_size=SIZE)), seed=4,
                    splits={"train": 16, "valid": 8, "test": 8}, chunk_size=8)
    return generate_dataset(recipe, tmp_path_factory.mktemp("sim") / "sim.zarr", workers=1, progress=False)


@pytest.fixture(scope="module")
def rnem_run(sim_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rnem"
    train(make_config("rnem", str(sim_dataset), "tiny", k=2, device="cpu", progress=False), out, progress=False)
    return out


def test_evaluate_writes_a_valid_result_with_simulation(run_cli, rnem_run, sim_dataset, tmp_path):
    out = tmp_path / "result.json"
    r = run_cli("evaluate", str(rnem_run), "--dataset", str(sim_dataset), "--k", "3", "--limit", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    result = read_result(out)
    m = result["metrics"]
    assert result["model"]["name"] == "rnem" and result["model"]["k"] == 3 and result["model"]["parameters"] > 0
    assert m["n_sequences"] == 4 and m["steps"] == 20 and len(m["simulation_bce"]) == 10
    assert -1 <= m["ari_mean"] <= 1 and m["bce_last"] > 0 and m["relative_bce_last"] > 0
    assert result["task"] == "custom" and result["dataset"]["fingerprint"] == open_dataset(sim_dataset).fingerprint
    assert f"{os.cpu_count()} cores" in result["hardware"]
    if Path("/proc/cpuinfo").exists():   # Linux: the CPU's model is named (wall times depend on it)
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        assert model in result["hardware"]


def test_evaluate_on_another_task_uses_its_k(run_cli, rnem_run, sim_dataset, tmp_path):
    """The extrapolation protocol: a run trained at K=2 evaluated on balls678 gets that task's K=8."""
    out = tmp_path / "r.json"
    r = run_cli("evaluate", str(rnem_run), "--task", "balls678", "--dataset", str(sim_dataset), "--limit", "2",
                "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    result = read_result(out)
    assert result["task"] == "balls678" and result["model"]["k"] == 8 and result["metrics"]["k"] == 8


def test_default_k_is_the_runs_own_on_its_task():
    """A K=8 run on the task it trained on is scored at K=8 (it once got the task's 5); another task's K elsewhere."""
    from rnem_bench.evaluation.run import default_k

    assert default_k("mini-balls4", 8, None) == default_k("mini-balls4", 8, "mini-balls4") == 8
    assert default_k("mini-balls4", 5, "mini-balls678") == default_k("balls4", 5, "balls678") == 8
    assert default_k(None, 3, None) == 3 and default_k(None, 3, "curtain") == 5


def test_show_run_writes_figure2_gif_and_curves(run_cli, rnem_run, tmp_path):
    r = run_cli("show", str(rnem_run), "--index", "1", "--out", str(tmp_path / "fig.png"))
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("fig.png", "fig_rollout.gif", "training_curves.png", "grouping_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert "merge rate" in r.stdout and "split rate" in r.stdout  # the last validation's grouping diagnostics
    r = run_cli("show", str(rnem_run), "--index", "99", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "out of range" in r.stderr


def test_score_outside_predictions(run_cli, sim_dataset, tmp_path):
    ds = open_dataset(sim_dataset)
    feats = ds.array("test", "features")[:].astype(np.float32)
    # a "model" from elsewhere: copies the current frame, K=1, and simulates by freezing frame 9
    preds = write_predictions(tmp_path / "copy.zarr", model="copy-frame", task="balls4",
                              prediction=feats[:, :-1], simulation=np.repeat(feats[:, 9:10], 10, axis=1))
    r = run_cli("score", str(preds), "--task", "balls4", "--dataset", str(sim_dataset), "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    result = read_result(tmp_path / "r.json")
    assert result["model"]["source"] == "external"
    assert result["metrics"]["relative_bce_last"] == pytest.approx(1.0)
    assert result["metrics"]["simulation_bce"] == pytest.approx(result["metrics"]["baseline_simulation_bce"])
    # on a non-canonical dataset the leaderboard refuses it
    r = run_cli("submit", str(tmp_path / "r.json"), "--board", str(tmp_path / "board"))
    assert r.returncode == 2 and "dataset.fingerprint" in r.stderr


def test_score_a_composite_prediction_with_its_masks(run_cli, sim_dataset, tmp_path):
    """A slot model's own composite frame and its masks: scored on the frame (not max_k psi_k), grouped
    by argmax gamma; masks that follow the true objects group perfectly."""
    ds = open_dataset(sim_dataset)
    feats = ds.array("test", "features")[:].astype(np.float32)
    groups = ds.array("test", "groups")[:, 1:]
    labels = np.where(groups == 255, 0, groups).astype(np.int64)
    gamma = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels].transpose(0, 1, 4, 2, 3)
    path = write_predictions(tmp_path / "slots.zarr", model="slots", task="balls4", prediction=feats[:, :-1], gamma=gamma)
    r = run_cli("score", str(path), "--task", "balls4", "--dataset", str(sim_dataset), "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_result(tmp_path / "r.json")["metrics"]
    assert m["k"] == gamma.shape[2] and m["relative_bce_last"] == pytest.approx(1.0)
    assert m["ari_mean"] == pytest.approx(1.0) and m["merge_rate"] == 0.0 and m["split_rate"] == 0.0


@pytest.mark.parametrize(
    "arrays,attrs,message",
    [
        ({"prediction": np.zeros((8, 19, SIZE, SIZE), np.float32)}, {}, "prediction must be (N, 20"),
        ({"prediction": np.full((8, 20, SIZE, SIZE), 2.0, np.float32)}, {}, "outside [0, 1]"),
        ({"prediction": np.full((8, 20, SIZE, SIZE), np.nan, np.float32)}, {}, "NaN"),
        ({"prediction": np.zeros((7, 20, SIZE, SIZE), np.float32)}, {}, "covers 7 sequences"),
        ({"psi": np.zeros((8, 20, 3, SIZE, SIZE), np.float32)}, {}, "need 'gamma'"),
        # a composite prediction with its masks (slot models): shapes, sums over K, NaN
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32), "gamma": np.full((8, 19, 2, SIZE, SIZE), 0.5, np.float32)},
         {}, "gamma beside a prediction (8, 20, 32, 32) must be (8, 20, K, 32, 32)"),
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32), "gamma": np.full((8, 20, 2, SIZE, SIZE), 0.4, np.float32)},
         {}, "must sum to 1 over K"),
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32), "gamma": np.full((8, 20, 2, SIZE, SIZE), np.nan, np.float32)},
         {}, "gamma contains NaN"),
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32)}, {"model": "a b"}, "field 'model'"),
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32)}, {"rnem_bench_predictions": 7}, "rnem_bench_predictions"),
        ({"prediction": np.zeros((8, 20, SIZE, SIZE), np.float32)}, {"training": {"task": "x", "lr": 1}}, "training"),
    ],
)
def test_bad_predictions_give_one_line_errors(run_cli, sim_dataset, tmp_path, arrays, attrs, message):
    path = write_predictions(tmp_path / "p.zarr", model="m", task="balls4", **arrays)
    if attrs:
        zarr.open_group(str(path), mode="a").attrs.update(attrs)
    r = run_cli("score", str(path), "--task", "balls4", "--dataset", str(sim_dataset))
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_score_refuses_groups_and_text_where_arrays_belong(run_cli, sim_dataset, tmp_path):
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    root.create_group("prediction")
    root.attrs.update({"rnem_bench_predictions": 1, "model": "m", "task": "balls4"})
    r = run_cli("score", str(tmp_path / "g.zarr"), "--task", "balls4", "--dataset", str(sim_dataset))
    assert r.returncode == 2 and "'prediction' must be an array" in r.stderr, r.stderr[-2000:]


def test_score_refuses_missing_or_foreign_stores(run_cli, tmp_path, sim_dataset):
    r = run_cli("score", str(tmp_path / "nothing.zarr"), "--task", "balls4", "--dataset", str(sim_dataset))
    assert r.returncode == 2 and "not found" in r.stderr
    (tmp_path / "plain").mkdir()
    r = run_cli("score", str(tmp_path / "plain"), "--task", "balls4", "--dataset", str(sim_dataset))
    assert r.returncode == 2 and r.stderr.startswith("error:")
