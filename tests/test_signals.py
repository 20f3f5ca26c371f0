"""Ctrl-C (SIGINT) and SIGTERM stop `rnem-bench run` and `rnem-bench dqn train` after the update
in flight, with a checkpoint that `--resume` continues without losing an update: real signals,
sent to real processes (the CLI in a subprocess, and this process while a trainer runs in it)."""

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
from rnem_bench.signals import Interrupted, resume_command, stop_on_signals
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.harness import Trainer, train
from rnem_bench.training.resolve import make_config

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
BATCHES = 4  # per epoch: 32 training sequences, batches of 8


@pytest.fixture(scope="module")
def tiny32(tmp_path_factory) -> Path:
    """32x32 frames: 32/16/16 sequences of 9 frames."""
    from rnem_bench.data.generate import generate_dataset

    recipe = tiny_balls_recipe(image_size=32)
    return generate_dataset(recipe, tmp_path_factory.mktemp("data32") / "tiny32.zarr", workers=1, progress=False)


def tiny_config(dataset: Path, model: str = "rnn-em", **kw):
    base = dict(k=2, epochs=3, batch_size=8, steps=3, device="cpu", progress=False)
    return make_config(model, str(dataset), **{**base, **kw})


def now() -> float:
    """The clock file times are stamped with (coarse on Linux): a file written later is not older."""
    clock = getattr(time, "CLOCK_REALTIME_COARSE", None)
    return time.clock_gettime(clock) if clock is not None else time.time() - 0.02


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from rnem_bench.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ONE_THREAD})


def wait_until(ready, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``ready()``: the run is training."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(0.01)
    proc.kill()
    _, err = proc.communicate()
    pytest.fail(f"the run never got going (exit {proc.returncode}): {err[-2000:]}")


def signal_and_wait(proc: subprocess.Popen, signum: int) -> tuple[float, str]:
    sent = now()
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    return sent, err


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = (ckpt.read_checkpoint(d / ckpt.LAST)["model"] for d in (a, b))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    la, lb = ckpt.read_log(a), ckpt.read_log(b)
    assert [(r["train_loss"], r["valid_loss"]) for r in la] == [(r["train_loss"], r["valid_loss"]) for r in lb]


# ------------------------------------------------------------------------------ rnem-bench run
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_cli_saves_on_signal_and_resumes(tiny32, tmp_path, signum):
    out = tmp_path / "run"
    args = ["run", "rnn", "--dataset", str(tiny32), "--batch-size", "8", "--steps", "3", "--device", "cpu",
            "--quiet", "--out", str(out)]
    proc = start_cli(*args, "--epochs", "500")  # far more than it gets to do before the signal
    wait_until(lambda: len(ckpt.read_log(out)) >= 1, proc)  # an epoch is done, the next one under way
    sent, err = signal_and_wait(proc, signum)

    assert proc.returncode == 128 + signum, err
    assert (out / ckpt.LAST).stat().st_mtime >= sent
    name = signal.Signals(signum).name
    assert f"stopped by {name}" in err and f"saved {out / ckpt.LAST}" in err and "resume with: rnem-bench run rnn" in err
    assert "Traceback" not in err
    summary = json.loads((out / ckpt.SUMMARY).read_text())
    assert summary["stop_reason"] == "signal" and not summary["finished"] and summary["signal"] == name
    saved = ckpt.read_checkpoint(out / ckpt.LAST)
    mid = saved["mid_epoch"]
    done = 0 if mid is None else mid["done"]  # None: it stopped between epochs
    assert saved["updates"] == summary["updates"] == saved["epoch"] * BATCHES + done
    assert len(ckpt.read_log(out)) == saved["epoch"]

    # Resume and finish the epoch it was in: every update of it is taken, once.
    epochs = saved["epoch"] + (1 if mid is not None else 2)
    resumed = run_cli(*args, "--epochs", str(epochs), "--resume", env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    assert f"max_epochs: {epochs} epochs ({epochs * BATCHES} updates)" in resumed.stdout
    summary = json.loads((out / ckpt.SUMMARY).read_text())
    assert summary["finished"] and summary["updates"] == epochs * BATCHES
    assert ckpt.read_checkpoint(out / ckpt.LAST)["mid_epoch"] is None
    assert [row["epoch"] for row in ckpt.read_log(out)] == list(range(1, epochs + 1))


# --------------------------------------------------------------------- in-process exact resume
def send_signal_at_update(trainer: Trainer, update: int, signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to this process during optimiser update number ``update`` (1-based)."""
    step, count = trainer.optimizer.step, [0]

    def step_then_signal(*a, **kw):
        count[0] += 1
        if count[0] == update:
            os.kill(os.getpid(), signum)  # lands while the update is still in flight
        return step(*a, **kw)

    trainer.optimizer.step = step_then_signal


@pytest.fixture(scope="module")
def uninterrupted(tiny32, tmp_path_factory) -> Path:
    torch.set_num_threads(1)  # as the tests it is compared with run (conftest): the same sums, the same bits
    out = tmp_path_factory.mktemp("full") / "run"
    summary = train(tiny_config(tiny32), out, progress=False)
    assert summary["updates"] == 3 * BATCHES
    return out


@pytest.mark.parametrize("update, signum, where", [
    (2, signal.SIGTERM, "in epoch 1 after batch 2/4"),      # mid-epoch
    (BATCHES, signal.SIGINT, "in epoch 1 after batch 4/4"),  # the epoch's last update: stops in validation
    (BATCHES + 3, signal.SIGTERM, "in epoch 2 after batch 3/4"),
])
def test_signal_mid_epoch_then_resume_equals_uninterrupted_run(tiny32, uninterrupted, tmp_path, update, signum, where):
    config = tiny_config(tiny32)
    out = tmp_path / "cut"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    trainer = Trainer(config, out, progress=False)
    send_signal_at_update(trainer, update, signum)
    with pytest.raises(Interrupted) as stop:
        trainer.fit()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored
    assert stop.value.code == 128 + signum and where in str(stop.value)
    saved = ckpt.read_checkpoint(out / ckpt.LAST)
    assert saved["updates"] == update and saved["mid_epoch"]["done"] == (update - 1) % BATCHES + 1
    summary = json.loads((out / ckpt.SUMMARY).read_text())
    assert (summary["stop_reason"], summary["finished"], summary["updates"]) == ("signal", False, update)

    done = train(config, out, resume=True, progress=False)
    assert done["finished"] and done["updates"] == 3 * BATCHES
    assert_same_weights(uninterrupted, out)


def test_checkpoints_without_an_update_count_still_resume(tiny32, uninterrupted, tmp_path):
    """last.pt files written before "updates" and "mid_epoch" existed: the count is derived."""
    config = tiny_config(tiny32)
    out = tmp_path / "old"
    train(dataclasses.replace(config, epochs=1), out, progress=False)
    old = ckpt.read_checkpoint(out / ckpt.LAST)
    del old["updates"], old["mid_epoch"]
    torch.save(old, out / ckpt.LAST)
    done = train(config, out, resume=True, progress=False)
    assert done["updates"] == 3 * BATCHES
    assert_same_weights(uninterrupted, out)


def test_signal_handlers_are_installed_only_while_fitting_and_in_the_main_thread():
    import threading

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert signal.getsignal(signal.SIGTERM) == stop.handle
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert stop.requested and stop.signum == signal.SIGTERM
        with pytest.raises(Interrupted, match="second SIGTERM"):  # a second one: stop at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) == before

    seen = []

    def in_thread():
        with stop_on_signals() as stop:
            seen.append((stop.requested, signal.getsignal(signal.SIGTERM)))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [(False, before)]


def test_resume_command_repeats_the_command_with_out_and_resume():
    import click

    group = click.Group("rnem-bench")
    parent = click.Context(group, info_name="rnem-bench")
    dqn = click.Context(click.Group("dqn"), info_name="dqn", parent=parent)
    train_ctx = click.Context(click.Command("train"), info_name="train", parent=dqn)
    argv = ["/x/rnem-bench", "dqn", "train", "--out", "runs/a b", "--steps", "100"]
    assert resume_command(train_ctx, Path("runs/a b"), argv) == "rnem-bench dqn train --out 'runs/a b' --steps 100 --resume"
    run_ctx = click.Context(click.Command("run"), info_name="run", parent=parent)
    assert resume_command(run_ctx, Path("runs/r"), ["-c", "run", "rnem", "--resume"]) == \
        "rnem-bench run rnem --resume --out runs/r"


# --------------------------------------------------------------------------- rnem-bench dqn train
DQN_ARGS = ["--device", "cpu", "--buffer-size", "400", "--batch-size", "8", "--learning-starts", "40",
            "--target-update", "50", "--eps-decay-steps", "150", "--checkpoint-every", "50", "--quiet"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_dqn_train_cli_saves_on_signal_and_resumes(tmp_path, signum):
    pytest.importorskip("ale_py")
    from rnem_bench.dqn.trainer import POLICY, TRAIN, read_log

    out = tmp_path / "dqn"
    proc = start_cli("dqn", "train", "--out", str(out), "--steps", "1000000", *DQN_ARGS)
    wait_until(lambda: (out / TRAIN).exists(), proc)  # the checkpoint of agent step 50
    sent, err = signal_and_wait(proc, signum)

    assert proc.returncode == 128 + signum, err
    assert (out / TRAIN).stat().st_mtime >= sent and (out / POLICY).stat().st_mtime >= sent
    name = signal.Signals(signum).name
    assert f"stopped by {name} at agent step" in err and "resume with: rnem-bench dqn train" in err
    assert "Traceback" not in err
    step = int(ckpt.read_checkpoint(out / TRAIN)["step"])
    assert step >= 50 and ckpt.read_checkpoint(out / POLICY)["agent_steps"] == step
    assert all(e["agent_step"] <= step for e in read_log(out))

    resumed = run_cli("dqn", "train", "--out", str(out), "--resume", "--steps", str(step + 30), "--quiet", env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[0])
    assert summary["agent_steps"] == step + 30 and summary["stopped"] == "steps"


def test_dqn_signal_then_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    pytest.importorskip("ale_py")
    from rnem_bench.dqn.trainer import DQNConfig, DQNTrainer, POLICY, train_dqn

    config = DQNConfig(steps=120, device="cpu", buffer_size=400, batch_size=8, learning_starts=40, train_every=4,
                       target_update=50, eps_decay_steps=150, checkpoint_every=1000, max_episode_frames=320)
    train_dqn(config, tmp_path / "full", progress=False)

    update, calls = DQNTrainer.update, [0]

    def update_then_signal(self):
        calls[0] += 1
        if calls[0] == 5:  # agent step 60: the 5th update (from step 44, every 4)
            os.kill(os.getpid(), signal.SIGTERM)
        return update(self)

    monkeypatch.setattr(DQNTrainer, "update", update_then_signal)
    with pytest.raises(Interrupted, match="stopped by SIGTERM at agent step 60") as stop:
        train_dqn(config, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    assert stop.value.code == 143
    assert ckpt.read_checkpoint(tmp_path / "cut" / POLICY)["agent_steps"] == 60
    train_dqn(config, tmp_path / "cut", resume=True, progress=False)
    a, b = (ckpt.read_checkpoint(d / POLICY)["state_dict"] for d in (tmp_path / "full", tmp_path / "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
