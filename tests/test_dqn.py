"""DQN: the Nature network, policy files (validated, foreign ones refused), the replay buffer's
stacks across episode ends and wrap-around, and a few hundred CPU training steps that save,
reload, resume bit for bit and keep a finite loss. ``dqn eval`` against the random policy."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import cli_in_process
from rnem_bench.dqn.checkpoint import load_network, load_policy_record, policy_dict
from rnem_bench.dqn.network import GreedyQPolicy, NatureDQN
from rnem_bench.dqn.replay import ReplayBuffer
from rnem_bench.errors import RnemBenchError

pytest.importorskip("ale_py")


def test_nature_dqn_shapes_and_size():
    net = NatureDQN(6)
    q = net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8))
    assert q.shape == (2, 6) and q.dtype == torch.float32
    # Mnih et al. 2015: 32x8x8/4, 64x4x4/2, 64x3x3/1, fc 512 on the 7x7x64 map, one output per action
    expected = (4 * 32 * 64 + 32) + (32 * 64 * 16 + 64) + (64 * 64 * 9 + 64) + (3136 * 512 + 512) + (512 * 6 + 6)
    assert sum(p.numel() for p in net.parameters()) == expected


# ------------------------------------------------------------------------------- policy files
def test_policy_file_round_trip_and_bare_state_dicts(tmp_path):
    torch.manual_seed(0)
    net = NatureDQN(6)
    torch.save(policy_dict(net, "SpaceInvaders", agent_steps=123), tmp_path / "p.pt")
    record = load_policy_record(tmp_path / "p.pt")
    assert record["game"] == "SpaceInvaders" and record["n_actions"] == 6 and record["agent_steps"] == 123
    loaded = load_network(tmp_path / "p.pt", "SpaceInvaders", 6)
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    # a compatible Nature-DQN state dict from elsewhere is accepted (game unknown)
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    assert load_policy_record(tmp_path / "bare.pt")["game"] is None
    stack = x[0].numpy()
    assert GreedyQPolicy(load_network(tmp_path / "bare.pt"), epsilon=0.0).act(stack, np.random.default_rng(0)) == \
        int(net(x[:1]).argmax())


class Foreign:  # pickled objects must never be unpickled
    pass


@pytest.mark.parametrize("make, match", [
    (lambda: {k: v[:, :2] if k == "conv1.weight" else v for k, v in NatureDQN(6).state_dict().items()},
     r"conv1.weight has shape \(32, 2, 8, 8\), expected \(32, 4, 8, 8\)"),
    (lambda: {k: v for k, v in NatureDQN(6).state_dict().items() if k != "fc.bias"}, "missing \\['fc.bias'\\]"),
    (lambda: {**NatureDQN(6).state_dict(), "extra.weight": torch.zeros(1)}, "unexpected \\['extra.weight'\\]"),
    (lambda: {"net.0.weight": torch.zeros(32, 4, 8, 8)}, "no 'out.weight'"),
    (lambda: {"format": "something-else", "state_dict": {}}, "not an rnem-bench DQN policy"),
    (lambda: {**NatureDQN(6).state_dict(), "out.bias": torch.full((6,), float("nan"))}, "NaN"),
    (lambda: [1, 2, 3], "expected a dict of tensors"),
    (lambda: Foreign(), "not a readable PyTorch weights file"),
])
def test_foreign_or_wrong_checkpoints_are_refused(tmp_path, make, match):
    path = tmp_path / "bad.pt"
    torch.save(make(), path)
    with pytest.raises(RnemBenchError, match=match):
        load_network(path)


def test_policy_must_fit_the_game(tmp_path):
    torch.save(policy_dict(NatureDQN(4), "SpaceInvaders", 0), tmp_path / "p4.pt")
    with pytest.raises(RnemBenchError, match="has 4 actions"):
        load_network(tmp_path / "p4.pt", "SpaceInvaders", 6)
    torch.save(policy_dict(NatureDQN(6), "Pong", 0), tmp_path / "pong.pt")
    with pytest.raises(RnemBenchError, match="policy for Pong, not SpaceInvaders"):
        load_network(tmp_path / "pong.pt", "SpaceInvaders", 6)


# -------------------------------------------------------------------------------- replay buffer
def fill(buffer: ReplayBuffer, episodes: list[int]) -> None:
    """Frames whose every pixel is 10 * episode + t + 1 (so 0 means padding)."""
    for e, length in enumerate(episodes):
        for t in range(length):
            frame = torch.full((84, 84), 10 * e + t + 1, dtype=torch.uint8)
            buffer.add(frame, action=t % 3, reward=float(t), done=t == length - 1, episode=e, t=t)


def decode(stacks: torch.Tensor) -> np.ndarray:
    return stacks[:, :, 0, 0].numpy().astype(int)


def test_replay_stacks_pad_episode_starts_and_never_mix_episodes():
    buffer = ReplayBuffer(100)
    fill(buffer, [6, 2, 5])
    batch = buffer.sample(256, torch.Generator().manual_seed(0))
    obs, nxt, done = decode(batch["obs"]), decode(batch["next_obs"]), batch["done"].numpy()
    for o, n, d, r in zip(obs, nxt, done, batch["reward"].numpy()):
        newest = o[-1] - 1
        e, t = divmod(newest, 10)
        assert r == t
        want = [10 * e + s + 1 if s >= 0 else 0 for s in range(t - 3, t + 1)]
        assert list(o) == want  # zeros before the episode's first frame, never a previous episode
        if not d:
            assert list(n) == want[1:] + [newest + 2]
    assert done.any() and not done.all()


def test_replay_wraparound_skips_overwritten_history():
    buffer = ReplayBuffer(10)
    fill(buffer, [8, 7])  # 15 steps into 10 slots: the first episode's first 5 steps are gone
    assert len(buffer) == 10
    batch = buffer.sample(500, torch.Generator().manual_seed(1))
    for o in decode(batch["obs"]):
        e, t = divmod(o[-1] - 1, 10)
        assert list(o) == [10 * e + s + 1 if s >= 0 else 0 for s in range(t - 3, t + 1)]
        assert not (e == 0 and t < 8), "episode 0's steps 5..7 lack their history; 0..4 are overwritten"
    # the newest step has no successor yet: only sampled if it ended its episode (it does here)
    state = buffer.state_dict()
    again = ReplayBuffer(10)
    again.load_state_dict(state)
    gen = torch.Generator().manual_seed(2)
    assert torch.equal(again.sample(8, gen)["obs"], buffer.sample(8, torch.Generator().manual_seed(2))["obs"])


def test_replay_checkpoint_holds_only_the_filled_slots(tmp_path):
    buffer = ReplayBuffer(2000)  # 14 MB of frames at full capacity
    fill(buffer, [10])
    torch.save(buffer.state_dict(), tmp_path / "replay.pt")
    assert (tmp_path / "replay.pt").stat().st_size < 20 * 84 * 84  # 10 frames and their metadata, not 2000


# ------------------------------------------------------------------------------------- training
def tiny_config(**overrides):
    from rnem_bench.dqn.trainer import DQNConfig

    base = dict(steps=240, device="cpu", buffer_size=400, batch_size=8, learning_starts=40, train_every=4,
                target_update=50, eps_decay_steps=150, checkpoint_every=120, max_episode_frames=320)
    return DQNConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from rnem_bench.dqn.trainer import train_dqn

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("dqn") / "run"
    summary = train_dqn(tiny_config(), out, progress=False)
    return out, summary


def test_trainer_runs_saves_and_reloads(trained_run):
    from rnem_bench.dqn.trainer import read_log

    out, summary = trained_run
    assert summary["agent_steps"] == 240 and summary["stopped"] == "steps"
    assert {p.name for p in out.iterdir()} >= {"config.json", "log.jsonl", "train.pt", "policy.pt"}
    log = read_log(out)
    # episodes are cut at 320 raw frames (the no-op start included): at most 80 agent steps each
    assert len(log) >= 3 and all(72 <= e["length"] <= 80 for e in log)
    assert [e["agent_step"] for e in log] == list(np.cumsum([e["length"] for e in log]))
    losses = [e["loss"] for e in log if e["loss"] is not None]
    assert losses and all(np.isfinite(losses)) and all(np.isfinite(e["return"]) for e in log)
    net = load_network(out / "policy.pt", "SpaceInvaders", 6)
    assert load_policy_record(out / "policy.pt")["agent_steps"] == 240
    assert load_policy_record(out / "train.pt")["agent_steps"] == 240  # the training checkpoint works as a policy
    assert all(torch.isfinite(p).all() for p in net.parameters())
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("policy.pt", "train.pt", "config.json"):  # the mode open() would give, not mkstemp's 0600
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert not torch.equal(net.out.weight, (torch.manual_seed(0), NatureDQN(6))[1].out.weight), "weights must have moved"


def test_resume_equals_the_uninterrupted_run(trained_run, tmp_path):
    from rnem_bench.dqn.trainer import read_log, train_dqn

    full, full_summary = trained_run
    out = tmp_path / "split"
    train_dqn(tiny_config(steps=100), out, progress=False)  # stops mid-episode, 60 steps after the first update
    stale = [out / ".train.pt.k1ll3d.tmp", out / ".policy.pt.k1ll3d.tmp"]  # a save the kill interrupted
    for path in stale:
        path.write_bytes(b"\0" * 1000)
    (out / "notes.txt").write_text("mine")
    summary = train_dqn(tiny_config(), out, resume=True, progress=False)
    assert summary["agent_steps"] == 240
    assert not any(path.exists() for path in stale) and (out / "notes.txt").exists()
    # the last 100 returns are part of the checkpoint: the summary counts episodes from before the resume
    assert summary["mean_return_last_100"] is not None
    assert summary["mean_return_last_100"] == full_summary["mean_return_last_100"]
    a = load_policy_record(full / "policy.pt")["state_dict"]
    b = load_policy_record(out / "policy.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_log(out) == [{**e, "seconds": f["seconds"]} for e, f in zip(read_log(full), read_log(out))]


def test_run_dir_misuse_is_refused(trained_run, tmp_path):
    from rnem_bench.dqn.trainer import train_dqn

    out, _ = trained_run
    with pytest.raises(RnemBenchError, match="pass --resume"):
        train_dqn(tiny_config(), out, progress=False)
    with pytest.raises(RnemBenchError, match="differ from the saved run: lr"):
        train_dqn(tiny_config(lr=1.0), out, resume=True, progress=False)
    with pytest.raises(RnemBenchError, match="nothing to resume"):
        train_dqn(tiny_config(), tmp_path / "empty", resume=True, progress=False)
    with pytest.raises(RnemBenchError, match="learning_starts"):
        train_dqn(tiny_config(learning_starts=2), tmp_path / "bad", progress=False)


def assert_one_line_error(code: int, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


@pytest.mark.parametrize("extra, gpus, message", [
    (["--device", "bogus"], 0, "--device must be auto, cpu or cuda[:N], got 'bogus'"),
    (["--device", "cuda"], 0, "no CUDA device is available"),
    (["--device", "cuda:x"], 1, "--device must be auto, cpu or cuda[:N], got 'cuda:x'"),
    (["--device", "cuda:1"], 1, "only 1 CUDA device(s) here"),
    (["--steps", "0"], 0, "steps must be >= 1, got 0"),
    (["--learning-starts", "2"], 0, "learning_starts (2) must be >= batch_size"),
    ("no-ale", 0, "pip install rnem-bench[atari]"),
])
def test_train_bad_input_is_one_line_and_leaves_no_run_dir(tmp_path, monkeypatch, capsys, extra, gpus, message):
    # what torch reports, whatever this machine has (a CPU-only torch, or one GPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    if extra == "no-ale":
        monkeypatch.setitem(sys.modules, "ale_py", None)
        extra = []
    out = tmp_path / "runs" / "r"
    code, _, err = cli_in_process(monkeypatch, capsys, "dqn", "train", "--out", str(out), "--quiet", *extra)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "runs").exists()


def test_train_out_that_is_a_file_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").write_text("x")
    code, _, err = cli_in_process(monkeypatch, capsys, "dqn", "train", "--out", str(tmp_path / "taken"), "--device", "cpu")
    assert_one_line_error(code, err, "is a file, not a run directory")


@pytest.mark.parametrize("device, message", [
    ("bogus", "--device must be auto, cpu or cuda[:N], got 'bogus'"), ("cuda", "no CUDA device is available"),
])
def test_eval_bad_device_is_one_line(trained_run, monkeypatch, capsys, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out, _ = trained_run
    code, _, err = cli_in_process(monkeypatch, capsys, "dqn", "eval", str(out), "--episodes", "1", "--device", device)
    assert_one_line_error(code, err, message)


def test_eval_command_compares_with_random(trained_run, monkeypatch, capsys):
    from rnem_bench.cli import main

    out, _ = trained_run
    monkeypatch.setattr(sys, "argv", ["rnem-bench", "dqn", "eval", str(out), "--episodes", "2", "--seed", "3",
                                      "--max-episode-frames", "400", "--json", str(out / "eval.json"),
                                      "--curve", str(out / "curve.png")])
    main()
    text = capsys.readouterr().out
    assert f"{out / 'policy.pt'}: mean return" in text and "random: mean return" in text
    assert "the DQN policy is" in text and "than random" in text  # 240 steps of training: either verdict
    record = json.loads((out / "eval.json").read_text())
    assert record["episodes"] == 2 and set(record["policies"]) == {str(out / "policy.pt"), "random"}
    assert all(r["episodes"] == 2 and r["min"] <= r["mean"] <= r["max"] for r in record["policies"].values())
    assert (out / "curve.png").stat().st_size > 1000


def test_train_command_writes_a_policy(tmp_path, monkeypatch, capsys):
    from rnem_bench.cli import main

    out = tmp_path / "cli"
    monkeypatch.setattr(sys, "argv", ["rnem-bench", "dqn", "train", "--out", str(out), "--steps", "60", "--device", "cpu",
                                      "--buffer-size", "100", "--batch-size", "4", "--learning-starts", "20",
                                      "--checkpoint-every", "1000", "--quiet"])
    main()
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["agent_steps"] == 60 and (out / "policy.pt").exists()
    assert json.loads((out / "config.json").read_text())["buffer_size"] == 100
    # --resume takes the saved values of the options left out; one given and different is still refused
    monkeypatch.setattr(sys, "argv", ["rnem-bench", "dqn", "train", "--out", str(out), "--resume", "--steps", "80", "--quiet"])
    main()
    assert json.loads(capsys.readouterr().out.splitlines()[0])["agent_steps"] == 80
    saved = json.loads((out / "config.json").read_text())
    assert (saved["steps"], saved["buffer_size"], saved["learning_starts"], saved["device"]) == (80, 100, 20, "cpu")
    code, _, err = cli_in_process(monkeypatch, capsys, "dqn", "train", "--out", str(out), "--resume", "--lr", "0.5")
    assert_one_line_error(code, err, "differ from the saved run: lr")


@pytest.mark.gpu
def test_training_on_cuda_keeps_the_buffer_on_the_gpu(tmp_path):
    from rnem_bench.dqn.trainer import DQNTrainer

    trainer = DQNTrainer(replace(tiny_config(), device="cuda", steps=80), tmp_path, progress=False)
    (tmp_path / "log.jsonl").touch()
    trainer.run()
    assert trainer.replay.frames.is_cuda and trainer.step == 80
    assert load_policy_record(tmp_path / "policy.pt")["agent_steps"] == 80


def test_shipped_policy_is_pinned_small_and_loads_weights_only():
    from rnem_bench.io import file_sha256
    from rnem_bench.policies import SPACEINVADERS_DQN, SPACEINVADERS_DQN_SHA256, shipped_policy

    path = shipped_policy()
    assert file_sha256(path) == SPACEINVADERS_DQN_SHA256 and path == SPACEINVADERS_DQN
    assert path.stat().st_size < 5 * 2**20
    record = torch.load(path, map_location="cpu", weights_only=True)
    assert record["game"] == "SpaceInvaders" and record["n_actions"] == 6 and record["agent_steps"] >= 500_000
    assert all(v.dtype == torch.float16 for v in record["state_dict"].values())
    net = load_network(path, "SpaceInvaders", 6)
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_shipped_policy_hash_mismatch_is_refused(tmp_path):
    from rnem_bench.policies import SPACEINVADERS_DQN, shipped_policy

    with pytest.raises(RnemBenchError, match="does not match its pinned sha256"):
        shipped_policy(SPACEINVADERS_DQN, "0" * 64)
    with pytest.raises(RnemBenchError, match="missing"):
        shipped_policy(tmp_path / "nope.pt", "0" * 64)


def test_export_policy_halves_the_file_and_keeps_the_greedy_actions(trained_run, tmp_path):
    from rnem_bench.dqn.checkpoint import export_policy

    out, _ = trained_run
    export_policy(out, tmp_path / "half.pt")
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (out / "policy.pt").stat().st_size
    full, half = load_network(out / "policy.pt"), load_network(tmp_path / "half.pt")
    frames = torch.randint(0, 256, (64, 4, 84, 84), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        assert (full(frames).argmax(1) == half(frames).argmax(1)).float().mean() > 0.95
