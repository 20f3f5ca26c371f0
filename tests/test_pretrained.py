"""Shipped weights: the trained mini R-NEM (rnem_bench/pretrained) and export_run."""

from __future__ import annotations

import json

import pytest
import torch

from rnem_bench.io import file_sha256
from rnem_bench.errors import RnemBenchError
from rnem_bench.pretrained import PRETRAINED, export_run, pretrained_dir
from rnem_bench.training.checkpoint import load_run


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_model_is_pinned_small_and_loads_weights_only(name):
    folder = pretrained_dir(name)
    weights = folder / "best.pt"
    assert file_sha256(weights) == PRETRAINED[name].sha256
    assert weights.stat().st_size < 10 * 2**20
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    model, config = load_run(folder)
    assert config.dataset == PRETRAINED[name].task == config.task   # no path of the training machine
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_model_groups_fresh_sequences(name, tmp_path):
    """It has learned: on freshly generated sequences of its task its groupings are far from chance."""
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.data.store import open_dataset
    from rnem_bench.metrics import adjusted_rand_index, assignments
    from rnem_bench.models import predict
    from rnem_bench.tasks import get_task

    model, config = load_run(pretrained_dir(name))
    task = get_task(PRETRAINED[name].task)
    path = generate_dataset(task.recipe(splits={"test": 16}, seed=123), tmp_path / "fresh.zarr", workers=1, progress=False)
    ds = open_dataset(path)
    features = torch.from_numpy(ds.array("test", "features")[:])
    groups = torch.from_numpy(ds.array("test", "groups")[:, 1:])
    out = predict(model, features, k=config.k, noise=config.noise)
    ari = adjusted_rand_index(assignments(out["gamma"]), groups).mean().item()
    assert ari > 0.3, f"ARI {ari:.3f}"  # learned something; a fixed 2x2 grid scores ~0.67 too (see test_demo_*)


def test_demo_shows_the_trained_model_beside_the_floors(tmp_path, monkeypatch):
    """`make demo`'s second half (`rnem-bench demo --no-train`): fresh sequences, the shipped model's
    scores beside the best floor of each on the same sequences (grids on ARI, copies on next-step
    prediction, the frozen frame in simulation), one sentence on where it wins, figure 2 and the GIF."""
    from click.testing import CliRunner

    from rnem_bench.cli import cli

    monkeypatch.setenv("RNEM_BENCH_DATA", str(tmp_path))
    r = CliRunner().invoke(cli, ["demo", "--no-train"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    rows = {label: next(line for line in lines if line.startswith(label + "  ") or line.startswith(label + " (lower"))
            for label in ("ARI", "ARI last", "video ARI", "BCE / copy", "IoU last", "simulation IoU")}
    assert float(rows["ARI"].split()[1]) > 0.5 and "grid" in rows["ARI"]
    assert "grid" in rows["video ARI"] and "copy" in rows["IoU last"] and "frozen frame" in rows["simulation IoU"]
    assert all(row.endswith(" ahead") for row in rows.values())
    verdict = next(line for line in lines if line.startswith("R-NEM beats"))
    assert "video ARI" in verdict  # it groups whole videos better than any grid (0.72 against 0.63 on the board)
    assert (tmp_path / "trained" / "figure2.png").stat().st_size > 0
    assert (tmp_path / "trained" / "figure2_rollout.gif").stat().st_size > 0
    assert (tmp_path / "demo_sequence.png").exists()


def test_the_demo_says_where_a_model_beats_every_floor_and_where_not():
    from rnem_bench.demo import beside_floors

    floors = {"grids": {"2x2 grid": {"ari_mean": 0.66, "ari_video": 0.63}},
              "next step": {"copy": {"relative_bce_last": 1.0, "iou_last": 0.79},
                            "blur copy": {"relative_bce_last": 0.22, "iou_last": 0.76}},
              "simulation": {"frozen frame": {"simulation_iou_mean": 0.36}}}
    metrics = {"ari_mean": 0.64, "ari_video": 0.72, "relative_bce_last": 0.12, "iou_last": 0.84,
               "simulation_iou": [0.4, 0.0]}                          # mean 0.2
    *table, verdict = beside_floors("R-NEM", metrics, floors)
    assert len(table) == 1 + 5                                         # header; no ari_last, no relational BCE
    bce = next(line for line in table if line.startswith("BCE / copy (lower wins)"))
    assert "0.220  blur copy" in bce and bce.endswith("R-NEM ahead")
    assert verdict.startswith("R-NEM beats every floor on video ARI, BCE / copy and IoU last, but not on ARI (the 2x2 grid's 0.660")
    assert "simulation IoU (the frozen frame's 0.360" in verdict
    everything = {**metrics, "ari_mean": 0.7, "simulation_iou": [0.5]}
    assert beside_floors("R-NEM", everything, floors)[-1] == "R-NEM beats every floor on every one of these scores."


def test_damaged_shipped_weights_are_refused(tmp_path, monkeypatch):
    import rnem_bench.pretrained as pretrained

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"not the weights")
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    monkeypatch.setitem(pretrained.PRETRAINED, "m", pretrained.Pretrained("mini-balls4", "test", "0" * 64))
    with pytest.raises(RnemBenchError, match="does not match its pinned sha256"):
        pretrained.pretrained_dir("m")
    with pytest.raises(RnemBenchError, match="no shipped model"):
        pretrained.pretrained_dir("nope")


def test_export_run_round_trip(tmp_path):
    """A finished run exported in fp16 loads anywhere (task name as dataset) and predicts as the
    run does, up to fp16 rounding of the weights."""
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.models import predict
    from rnem_bench.recipes import Recipe
    from rnem_bench.training.harness import train
    from rnem_bench.training.resolve import make_config

    recipe = Recipe("balls", {"n_balls": [2, 2], "image_size": 16, "steps": 3}, seed=0, splits={"train": 8, "valid": 4})
    path = generate_dataset(recipe, tmp_path / "d.zarr", workers=1, progress=False)
    config = make_config("rnem", str(path), "tiny", device="cpu", progress=False)
    train(config, tmp_path / "run", progress=False)
    sha = export_run(tmp_path / "run", tmp_path / "shipped")
    assert sha == file_sha256(tmp_path / "shipped" / "best.pt")
    assert json.loads((tmp_path / "shipped" / "config.json").read_text())["dataset"] == "d"
    assert (tmp_path / "shipped" / "log.jsonl").read_text() == (tmp_path / "run" / "log.jsonl").read_text()
    x = (torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.8).to(torch.uint8)
    ref, _ = load_run(tmp_path / "run")
    shipped, _ = load_run(tmp_path / "shipped")
    a, b = predict(ref, x, k=config.k, noise=0.0), predict(shipped, x, k=config.k, noise=0.0)
    assert (a["psi"] - b["psi"]).abs().max() < 0.02
