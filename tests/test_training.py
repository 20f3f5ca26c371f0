"""Training harness: the loss falls, resume-after-kill equals an uninterrupted run, NaN stops
cleanly, early stopping, load_run, the CLI's user errors, DDP on CPU (gloo)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli, tiny_balls_recipe
from rnem_bench.errors import RnemBenchError
from rnem_bench.models import build_model, predict
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.harness import Trainer, train
from rnem_bench.training.resolve import default_rundir, make_config


@pytest.fixture(scope="module")
def tiny32(tmp_path_factory) -> Path:
    """32x32 frames (4x cheaper than the shared 64x64 tiny dataset): 32/16/16 sequences, 9 frames."""
    from rnem_bench.data.generate import generate_dataset

    recipe = tiny_balls_recipe(image_size=32)
    return generate_dataset(recipe, tmp_path_factory.mktemp("data32") / "tiny32.zarr", workers=1, progress=False)


def tiny_config(dataset: Path, model: str = "rnem", **kw):
    base = dict(k=2, epochs=3, batch_size=8, steps=5, device="cpu", progress=False)
    return make_config(model, str(dataset), **{**base, **kw})


def test_loss_falls_on_tiny_dataset(tiny32, tmp_path):
    summary = train(tiny_config(tiny32, epochs=4), tmp_path / "run", progress=False)
    log = ckpt.read_log(tmp_path / "run")
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < 0.7 * log[0]["train_loss"]
    assert log[-1]["valid_loss"] < log[0]["valid_loss"]
    assert summary["finished"] and summary["stop_reason"] == "max_epochs"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "rnem" and config["task"] is None and config["k"] == 2 and config["noise"] == 0.2


def _weights(rundir: Path) -> dict[str, torch.Tensor]:
    return ckpt.read_checkpoint(rundir / ckpt.LAST)["model"]


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    la, lb = ckpt.read_log(a), ckpt.read_log(b)
    assert [(r["train_loss"], r["valid_loss"]) for r in la] == [(r["train_loss"], r["valid_loss"]) for r in lb]


class Killed(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(tiny32, tmp_path):
    config = tiny_config(tiny32, model="rnn-em", steps=3)
    train(config, tmp_path / "full", progress=False)

    def kill_after_first(epoch: int) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "cut", progress=False, on_epoch_end=kill_after_first)
    assert len(ckpt.read_log(tmp_path / "cut")) == 1
    with pytest.raises(RnemBenchError, match="--resume"):
        train(config, tmp_path / "cut", progress=False)
    with pytest.raises(RnemBenchError, match="lr"):
        train(dataclasses.replace(config, lr=0.01), tmp_path / "cut", resume=True, progress=False)
    train(config, tmp_path / "cut", resume=True, progress=False)
    _assert_same_run(tmp_path / "full", tmp_path / "cut")

    # A time budget stops resumably between epochs (reproduce --budget), and resuming completes it.
    cut = train(config, tmp_path / "budget", progress=False, time_limit=1e-9)
    assert cut["stop_reason"] == "time_limit" and not cut["finished"] and cut["epochs"] == 1
    done = train(config, tmp_path / "budget", resume=True, progress=False)
    assert done["finished"] and done["epochs"] == 3
    _assert_same_run(tmp_path / "full", tmp_path / "budget")


def test_cli_resume_after_sigkill(tiny32, tmp_path):
    """A real kill mid-run (SIGKILL, no cleanup), then `run --resume`: same weights and losses."""
    args = ["run", "rnem", "--dataset", str(tiny32), "--k", "2", "--epochs", "3", "--batch-size", "8",
            "--steps", "5", "--device", "cpu", "--quiet"]
    train(tiny_config(tiny32, model="rnem", k=2, epochs=3, steps=5), tmp_path / "full", progress=False)

    cut = tmp_path / "cut"
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # as in this process: same sums, same bits
    proc = subprocess.Popen([sys.executable, "-c", "from rnem_bench.cli import main; main()", *args, "--out", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=one_thread)
    deadline = time.time() + 120
    while time.time() < deadline and len(ckpt.read_log(cut)) < 1:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / ckpt.SUMMARY).exists(), "the run finished before it could be killed"
    resumed = run_cli(*args, "--out", str(cut), "--resume", env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert "max_epochs: 3 epochs" in resumed.stdout
    _assert_same_run(tmp_path / "full", cut)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny32, tmp_path):
    trainer = Trainer(tiny_config(tiny32, model="rnn"), tmp_path / "run", progress=False)

    def poison(epoch: int) -> None:
        with torch.no_grad():
            trainer.net.decoder.convs[-1].conv.bias.fill_(float("nan"))

    with pytest.raises(RnemBenchError, match=r"loss became nan at epoch 2.*last good checkpoint: .*last.pt \(epoch 1\)"):
        trainer.fit(on_epoch_end=poison)
    saved = ckpt.read_checkpoint(tmp_path / "run" / ckpt.LAST)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_early_stopping_on_validation_loss(tiny32, tmp_path, monkeypatch):
    losses = iter([5.0, 4.0, 4.5, 4.2, 3.0, 2.0])
    monkeypatch.setattr(Trainer, "validate", lambda self: {"valid_loss": next(losses)})
    summary = train(tiny_config(tiny32, model="rnn", epochs=10, patience=2), tmp_path / "run", progress=False)
    assert summary["stop_reason"] == "early_stopping"
    assert summary["epochs"] == 4 and summary["best_epoch"] == 2 and summary["best_valid_loss"] == 4.0
    assert ckpt.read_checkpoint(tmp_path / "run" / ckpt.BEST)["epoch"] == 2


def test_load_run_gives_the_best_model_and_its_config(tiny32, tmp_path):
    train(tiny_config(tiny32, model="rnem", epochs=1), tmp_path / "run", progress=False)
    model, config = ckpt.load_run(tmp_path / "run")
    assert config.model == "rnem" and config.k == 2 and config.image_size == 32 and config.steps == 5
    assert not model.training
    x = torch.zeros(2, 4, 32, 32, dtype=torch.uint8)
    assert predict(model, x, k=5, noise=config.noise)["psi"].shape == (2, 3, 5, 32, 32)
    with pytest.raises(RnemBenchError, match="run dir not found"):
        ckpt.load_run(tmp_path / "nope")
    (tmp_path / "run" / ckpt.BEST).write_bytes(b"not a checkpoint")
    with pytest.raises(RnemBenchError, match="cannot read checkpoint"):
        ckpt.load_run(tmp_path / "run")


def test_user_errors_are_one_line(tiny32, tmp_path):
    bad_model = run_cli("run", "nope", "--dataset", str(tiny32), env={"OMP_NUM_THREADS": "1"})
    assert bad_model.returncode == 2 and bad_model.stderr.strip() == "error: unknown model 'nope' (known: rnem, rnem-noatt, rnn-em, rnn, lstm)"
    with pytest.raises(RnemBenchError, match="neither a task"):
        make_config("rnem", str(tmp_path / "none.zarr"))
    with pytest.raises(RnemBenchError, match="test-only"):
        make_config("rnem", "balls678")
    with pytest.raises(RnemBenchError, match="--steps must be in 1..8"):
        make_config("rnem", str(tiny32), steps=50)
    with pytest.raises(RnemBenchError, match="noise"):
        make_config("rnem", str(tiny32), noise=0.7)
    # an explicit 0 is refused, never read as "use the default"
    for option, message in (("k", "k must be >= 1"), ("epochs", "epochs must be >= 1"),
                            ("batch_size", "batch size must be >= 1"), ("patience", "patience must be >= 1")):
        with pytest.raises(RnemBenchError, match=message):
            make_config("rnem", str(tiny32), **{option: 0})
    for device, message in (("cuda:x", "must be auto, cpu or cuda"), ("tpu", "must be auto, cpu or cuda")):
        with pytest.raises(RnemBenchError, match=message):
            make_config("rnem", str(tiny32), device=device)


def test_malformed_run_files_are_one_line_errors(tiny32, tmp_path):
    rundir = tmp_path / "run"
    config = tiny_config(tiny32, epochs=1)
    train(config, rundir, progress=False)
    for junk in ([1, 2], {"model": {}}, torch.zeros(3)):  # a list, a dict lacking the training state, a tensor
        torch.save(junk, rundir / ckpt.LAST)
        with pytest.raises(RnemBenchError, match="not a training checkpoint"):
            train(dataclasses.replace(config, epochs=2), rundir, resume=True, progress=False)
    other = dataclasses.replace(tiny_config(tiny32, model="rnn"), epochs=2)
    torch.save({**torch.load(rundir / ckpt.BEST, weights_only=True), "optimizer": {}, "rng": {}, "epoch": 1,
                "best_valid": 1.0, "best_epoch": 1, "bad_epochs": 0, "seconds": 0.0, "history": []}, rundir / ckpt.LAST)
    (rundir / ckpt.CONFIG).write_text(json.dumps(other.to_dict()))
    with pytest.raises(RnemBenchError, match="does not fit this run's model"):
        train(other, rundir, resume=True, progress=False)
    (rundir / ckpt.CONFIG).write_text(json.dumps({**config.to_dict(), "image_size": "abc"}))
    with pytest.raises(RnemBenchError, match="field 'image_size' has the wrong type"):
        ckpt.RunConfig.load(rundir / ckpt.CONFIG)


def test_default_run_dirs_never_clobber_a_run(tiny32, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(tiny32, model="rnn", k=None)
    first = default_rundir(config)
    assert first == Path("runs/rnn-tiny32-k1-seed0") and config.k == 1  # K=1 models ignore the task's K
    first.mkdir(parents=True)
    assert default_rundir(config) == Path("runs/rnn-tiny32-k1-seed0-2")


def test_ddp_two_processes_on_cpu(tiny32, tmp_path):
    """torchrun with 2 gloo processes: ranks stay in step, rank 0 writes the run dir."""
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "rnem_bench.training.commands",
           "rnn", "--dataset", str(tiny32), "--epochs", "1", "--batch-size", "4", "--steps", "3",
           "--device", "cpu", "--quiet", "--out", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    log = ckpt.read_log(tmp_path / "ddp")
    assert len(log) == 1 and log[0]["epoch"] == 1
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2


def test_actions_reach_the_model_when_the_dataset_has_them(tmp_path):
    """An ALE-like dataset (84x84 frames + actions): the config turns the action embedding on and
    the harness feeds each step its action."""
    import numpy as np

    from rnem_bench.data.store import ChunkTask, DatasetWriter, write_chunk
    from rnem_bench.recipes import Recipe

    recipe = Recipe("invaders", {"synthetic": True}, seed=0, splits={"train": 8, "valid": 4}, chunk_size=8)
    path = tmp_path / "ale.zarr"
    writer = DatasetWriter(path, recipe, {"features": (4, 84, 84), "actions": (4,)}, extra_attrs={"n_actions": 5})
    rng = np.random.default_rng(0)
    for split, n in recipe.splits.items():
        arrays = {"features": (rng.random((n, 4, 84, 84)) > 0.9).astype(np.uint8),
                  "actions": rng.integers(0, 5, (n, 4)).astype(np.int16)}
        write_chunk(path, ChunkTask(split, 0, 0, n), arrays)
    writer.finalize()
    config = make_config("rnem", str(path), k=2, epochs=1, batch_size=4, device="cpu", noise=0.02, progress=False)
    assert config.use_actions and config.model_options == {"n_actions": 5} and config.image_size == 84
    summary = train(config, tmp_path / "run", progress=False)
    assert summary["epochs"] == 1
    model, _ = ckpt.load_run(tmp_path / "run")
    assert model.needs_actions
    torch.manual_seed(config.seed)  # the harness's initialisation: the embedding has been trained since
    assert not torch.equal(model.actions.embed.weight, build_model("rnem", 84, n_actions=5).actions.embed.weight)


def test_the_pace_is_told_once_after_the_first_updates(tiny32, tmp_path):
    """``on_cost`` hears the measured seconds per update once, after a warm-up update and
    COST_PROBE timed ones, with the epoch's update count and the epoch cap."""
    from rnem_bench.training.harness import COST_PROBE

    heard = []
    config = tiny_config(tiny32, epochs=2, batch_size=4)  # 32 sequences / 4 = 8 updates per epoch > 1 + COST_PROBE
    train(config, tmp_path / "run", progress=False, on_cost=heard.append)
    assert len(heard) == 1
    cost = heard[0]
    assert cost.seconds_per_update > 0 and cost.updates_per_epoch == 8 and cost.epochs == 2
    assert cost.worst_case_seconds == pytest.approx(cost.seconds_per_update * 8 * 2)
    assert COST_PROBE + 1 <= 8


def test_run_says_what_a_paper_tier_run_costs_on_a_cpu(capsys):
    """The cost line: seconds per update, epoch time, the epoch cap's worst case and the CPU-tier
    task of the same family; nothing for the CPU tier itself or on a GPU."""
    from rnem_bench.training.commands import cost_reporter
    from rnem_bench.training.config import RunConfig
    from rnem_bench.training.harness import Cost

    def config(task, device="cpu"):
        return RunConfig(model="rnem", dataset="x", task=task, k=5, noise=0.2, seed=0, image_size=64, steps=20,
                         device=device, epochs=500)

    cost_reporter(config("curtain"))(Cost(2.5, 1000, 500))
    line = capsys.readouterr().out.strip()
    assert line.startswith("cost: 2.50 s per update here -> 42 min per epoch (1000 updates), up to 347 h for 500 epochs")
    assert "--dataset mini-curtain" in line and "\n" not in line
    cost_reporter(config("invaders"))(Cost(1.0, 100, 500))
    assert "needs a GPU" in capsys.readouterr().out
    assert cost_reporter(config("mini-curtain")) is None
    assert cost_reporter(config("curtain", device="cuda")) is None
    assert cost_reporter(config(None)) is None


def test_validation_logs_grouping_every_epoch(tiny32, tmp_path):
    """log.jsonl carries the validation ARI (mean over steps and last step) and the update count
    of each epoch, as the evaluator computes ARI; K=1 models log no ARI."""
    from rnem_bench.data.store import open_dataset
    from rnem_bench.metrics import adjusted_rand_index, assignments

    train(tiny_config(tiny32, epochs=2), tmp_path / "run", progress=False)
    log = ckpt.read_log(tmp_path / "run")
    assert [row["updates"] for row in log] == [4, 8]
    for row in log:
        # adjusted for chance, so an untrained model's ARI can fall just below 0 at any step
        assert -1.0 <= row["valid_ari_last"] <= 1.0 and -1.0 <= row["valid_ari_mean"] <= 1.0
    # the last epoch's figure equals the ARI of the saved weights' gamma on the same noisy inputs
    trainer = Trainer(tiny_config(tiny32, epochs=2), tmp_path / "run", progress=False)
    trainer.restore()
    assert trainer.validate()["valid_ari_mean"] == pytest.approx(log[-1]["valid_ari_mean"], abs=1e-9)
    ds = open_dataset(tiny32)
    assert "groups" in ds.arrays and adjusted_rand_index and assignments
    train(tiny_config(tiny32, model="lstm", epochs=1), tmp_path / "lstm", progress=False)
    assert "valid_ari_mean" not in ckpt.read_log(tmp_path / "lstm")[0]
