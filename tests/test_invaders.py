"""Space Invaders recorder: binary 84x84 frames, actions in the action space, determinism whatever
the workers, resume after a kill, windows that never cross an episode end, DQN policies pinned by
hash, one-line errors. Tiny sizes: a chunk plays a few hundred agent steps at most."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_same_data, cli_in_process, kill_generation_after, run_cli
from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.data.verify import verify_dataset
from rnem_bench.dqn.ale import Step
from rnem_bench.dqn.frames import area_weights, binarize, resize_area
from rnem_bench.dqn.network import NatureDQN
from rnem_bench.dqn.checkpoint import policy_dict
from rnem_bench.dqn.policy import RandomPolicy
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators import invaders
from rnem_bench.recipes import Recipe

pytest.importorskip("ale_py")

SPLITS = {"train": 40, "valid": 8, "test": 8}


def tiny_recipe(**overrides) -> Recipe:
    params = invaders.Params(**{"steps": 9, **overrides})
    return Recipe("invaders", asdict(params), seed=0, splits=dict(SPLITS), chunk_size=8)


@pytest.fixture(scope="module")
def tiny_invaders(tmp_path_factory) -> Path:
    """40/8/8 sequences of 10 frames, random policy, one process."""
    return generate_dataset(tiny_recipe(), tmp_path_factory.mktemp("inv") / "tiny.zarr", workers=1, progress=False)


# ------------------------------------------------------------------------------- preprocessing
def test_area_resize_matches_the_dense_definition():
    rng = np.random.default_rng(0)
    screen = rng.integers(0, 256, (210, 160)).astype(np.uint8)

    def dense(n_in, n_out):  # overlap of output cell [o s, (o+1) s) with input cell [i, i+1), over s
        s = n_in / n_out
        return np.array([[max(0.0, min((o + 1) * s, i + 1) - max(o * s, i)) / s for i in range(n_in)] for o in range(n_out)])

    expected = dense(210, 84) @ screen.astype(np.float64) @ dense(160, 84).T
    np.testing.assert_allclose(resize_area(screen, 84), expected, atol=1e-3)
    for n_in, n_out in [(210, 84), (160, 84), (160, 64), (84, 84)]:
        _, w = area_weights(n_in, n_out)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    # one lit source pixel lights exactly the output pixel(s) covering it
    one = np.zeros((210, 160), np.uint8)
    one[100, 80] = 1
    out = binarize(resize_area(one, 84), 0.0001)
    assert out.dtype == np.uint8 and out.sum() >= 1 and out[40, 42] == 1 and out[:, :30].sum() == 0


# ------------------------------------------------------------------------------------- params
def test_params_and_fingerprint_need_no_ale():
    code = ("import sys; sys.modules['ale_py'] = None; sys.modules['gymnasium'] = None\n"
            "from rnem_bench.tasks import get_task\n"
            "r = get_task('invaders').recipe(); print(r.fingerprint(), r.params['policy'], r.params['steps'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    fingerprint, policy, steps = out.stdout.split()
    assert len(fingerprint) == 16 and policy.startswith("dqn:") and policy.endswith("spaceinvaders-dqn.pt") and steps == "25"


@pytest.mark.parametrize("bad, match", [
    ({"steps": 0}, "steps"), ({"image_size": 4}, "image size"), ({"epsilon": 1.5}, "epsilon"),
    ({"threshold": 1.0}, "threshold"), ({"game": "Space Invaders!"}, "game name"),
    ({"policy": "ppo:x.pt"}, "--policy"), ({"policy": "dqn:x.pt"}, "policy_sha256"),
    ({"sticky_actions": 1.0}, "sticky_actions"), ({"frame_skip": 0}, "frame_skip"),
])
def test_bad_params_are_one_line_errors(bad, match):
    with pytest.raises(RnemBenchError, match=match):
        invaders.Params(**bad).validate()


def test_epsilon_is_refused_with_the_random_policy():
    # random play ignores epsilon: a new value would fork the fingerprint over identical data
    with pytest.raises(RnemBenchError, match="--epsilon applies to DQN policies only"):
        invaders.Params(epsilon=0.1).validate()
    invaders.Params(policy="random", epsilon=0.05).validate()  # the default (the README's example) stays valid
    invaders.Params(policy="dqn:x.pt", policy_sha256="0" * 64, epsilon=0.1).validate()


def test_window_cutting():
    assert invaders.window_starts(30, 10, overlap=False) == [0, 10, 20]
    assert invaders.window_starts(29, 10, overlap=False) == [0, 10]
    assert invaders.window_starts(9, 10, overlap=False) == []
    assert invaders.window_starts(12, 10, overlap=True) == [0, 1, 2]


# --------------------------------------------------------------- episodes never cross their end
class FakeGame:
    """Episodes of known length whose screens spell out the agent step t in binary bands."""

    n_actions = 3
    action_names = ["A", "B", "C"]
    bits = 8

    def __init__(self):
        self.lengths: list[int] = []

    def _screen(self) -> np.ndarray:
        screen = np.zeros((210, 160), np.uint8)
        band = 210 // self.bits
        for b in range(self.bits):
            if (self.t >> b) & 1:
                screen[b * band + 8 : (b + 1) * band - 8] = 200
        return screen

    def reset(self, rng):
        self.t, self.length = 0, int(rng.integers(3, 40))  # some episodes are shorter than a window
        self.lengths.append(self.length)
        return self._screen()

    def step(self, action, rng):
        assert 0 <= action < self.n_actions
        self.t += 1
        return Step(self._screen(), 0.0, self.t >= self.length, False, 1)

    @classmethod
    def decode(cls, frame: np.ndarray) -> int:
        rows = (np.arange(cls.bits) + 0.5) * (frame.shape[0] / cls.bits)
        return sum(int(frame[int(r), 40]) << b for b, r in enumerate(rows))


@pytest.mark.parametrize("overlap", [False, True])
def test_sequences_never_cross_an_episode_end(overlap):
    params = invaders.Params(steps=5, overlap=overlap)
    game = FakeGame()
    rec = invaders.Recorder(params, game=game, policy=RandomPolicy(game.n_actions))
    out = invaders.record_chunk(rec, seed=0, split="train", start=16, stop=16 + 50)
    assert out["features"].shape == (50, 6, 84, 84) and set(np.unique(out["features"])) <= {0, 1}
    for i in range(50):
        ts = [FakeGame.decode(f) for f in out["features"][i]]
        offset = int(out["step_offset"][i])
        assert ts == list(range(offset, offset + 6)), "a window must be consecutive steps of one episode"
    # every episode id names one played episode; its windows fit inside it and (unless asked) do not overlap
    ids = out["episode"]
    assert ids.min() >= 16 and ids.max() < 16 + 50 and np.all(np.diff(ids) >= 0)
    played = [n for n in game.lengths if n >= 6]
    for j, e in enumerate(np.unique(ids)):
        offsets = out["step_offset"][ids == e]
        assert offsets.max() + 6 <= played[j]  # the final (terminal) screen is never recorded
        if not overlap:
            assert np.all(np.diff(offsets) >= 6)
    assert out["actions"].min() >= 0 and out["actions"].max() < game.n_actions


def test_episodes_that_are_always_too_short_are_an_error():
    params = invaders.Params(steps=200)
    game = FakeGame()
    rec = invaders.Recorder(params, game=game, policy=RandomPolicy(game.n_actions))
    with pytest.raises(RnemBenchError, match="lower --steps"):
        invaders.record_chunk(rec, seed=0, split="train", start=0, stop=2)


# ------------------------------------------------------------------------------ real ALE data
def test_frames_are_binary_84x84_and_actions_in_the_action_space(tiny_invaders):
    ds = open_dataset(tiny_invaders)
    assert ds.counts == SPLITS and not ds.has_groups and ds.attrs["has_groups"] is False
    assert sorted(ds.arrays) == ["actions", "episode", "features", "step_offset"]
    assert ds.attrs["n_actions"] == 6 and ds.attrs["action_names"][:2] == ["NOOP", "FIRE"]
    feats = ds.array("train", "features")[:]
    assert feats.shape == (40, 10, 84, 84) and feats.dtype == np.uint8
    assert set(np.unique(feats)) == {0, 1}
    assert 0.02 < feats.mean() < 0.5  # the invaders, shields, score and ground: not empty, not full
    assert np.any(feats[:, 1:] != feats[:, :-1]), "frames must change over a sequence"
    acts = ds.array("train", "actions")[:]
    assert acts.shape == (40, 10) and acts.dtype == np.int16 and acts.min() >= 0 and acts.max() < 6
    assert len(np.unique(acts)) > 1
    offsets, episodes = ds.array("train", "step_offset")[:], ds.array("train", "episode")[:]
    for e in np.unique(episodes):  # back-to-back windows of one episode: no overlap
        assert np.all(np.diff(np.sort(offsets[episodes == e])) >= 10)
    assert "OK" in verify_dataset(tiny_invaders, progress=False)


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, tiny_invaders):
    two = generate_dataset(tiny_recipe(), tmp_path / "two.zarr", workers=2, progress=False)
    assert_same_data(tiny_invaders, two)
    recipe = replace(tiny_recipe(), seed=1, splits={"test": 8})
    other = generate_dataset(recipe, tmp_path / "s1.zarr", workers=1, progress=False)
    assert not np.array_equal(open_dataset(other).array("test", "features")[:],
                              open_dataset(tiny_invaders).array("test", "features")[:])


def test_killed_generation_resumes_to_identical_data(tmp_path, tiny_invaders):
    """The CLI's recipe for these flags is the fixture's: a killed-then-resumed run must equal it."""
    args = ["generate", "invaders", "--n-seq", "40/8/8", "--chunk-size", "8", "--steps", "9", "--seed", "0",
            "--workers", "1", "--quiet"]
    killed = tmp_path / "killed.zarr"
    done = kill_generation_after(args, killed, chunks=1)
    assert 0 < done < 5, "the run should be killed part-way"
    with pytest.raises(RnemBenchError, match="incomplete"):
        open_dataset(killed)
    result = run_cli(*args, "--out", str(killed))
    assert result.returncode == 0, result.stderr
    assert_same_data(killed, tiny_invaders)


# --------------------------------------------------------------------------------- DQN policies
def test_dqn_policy_is_pinned_by_hash_and_recorded_deterministically(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "policy.pt"
    torch.save(policy_dict(NatureDQN(6), "SpaceInvaders", agent_steps=0), ckpt)
    params = invaders.pin_policy(invaders.Params(steps=4, policy=f"dqn:{ckpt}", epsilon=0.0))
    assert params.policy == f"dqn:{ckpt.resolve()}" and len(params.policy_sha256) == 64
    recipe = Recipe("invaders", asdict(params), seed=0, splits={"test": 4}, chunk_size=4)
    a = generate_dataset(recipe, tmp_path / "a.zarr", workers=1, progress=False)
    b = generate_dataset(recipe, tmp_path / "b.zarr", workers=1, progress=False)
    assert_same_data(a, b)
    acts = open_dataset(a).array("test", "actions")[:]
    assert acts.min() >= 0 and acts.max() < 6
    # the file changes: the recipe no longer pins it, recording refuses
    torch.save(policy_dict(NatureDQN(6), "SpaceInvaders", agent_steps=1), ckpt)
    with pytest.raises(RnemBenchError, match="changed since the recipe was made"):
        generate_dataset(recipe, tmp_path / "c.zarr", workers=1, progress=False)


def test_pinned_policy_fingerprint_does_not_depend_on_where_the_file_lies(tmp_path):
    torch.manual_seed(0)
    paths = [tmp_path / "a" / "policy.pt", tmp_path / "b" / "other-name.pt"]
    for path in paths:
        path.parent.mkdir()
    torch.save(policy_dict(NatureDQN(6), "SpaceInvaders", agent_steps=0), paths[0])
    paths[1].write_bytes(paths[0].read_bytes())
    recipes = [Recipe("invaders", asdict(invaders.pin_policy(invaders.Params(policy=f"dqn:{p}"))), seed=0,
                      splits={"test": 4}) for p in paths]
    assert recipes[0].params["policy"] != recipes[1].params["policy"]
    assert recipes[0].fingerprint() == recipes[1].fingerprint()
    other = Recipe("invaders", asdict(invaders.Params()), seed=0, splits={"test": 4})
    assert other.fingerprint() != recipes[0].fingerprint()


def test_policy_for_another_game_is_refused(tmp_path):
    ckpt = tmp_path / "breakout.pt"
    torch.save(policy_dict(NatureDQN(6), "Breakout", agent_steps=0), ckpt)
    params = invaders.pin_policy(invaders.Params(policy=f"dqn:{ckpt}"))
    with pytest.raises(RnemBenchError, match="policy for Breakout, not SpaceInvaders"):
        invaders.Recorder(params)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_bad_input_gives_one_line_errors(tmp_path, monkeypatch, capsys):
    wrong = tmp_path / "wrong.pt"
    torch.save({k: v[..., :1] if v.ndim > 1 else v for k, v in NatureDQN(6).state_dict().items()}, wrong)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    cases = [
        (["--game", "NoSuchGame"], "unknown ALE game 'NoSuchGame'"),
        (["--policy", f"dqn:{wrong}"], "does not fit the Nature-DQN network: conv1.weight"),
        (["--policy", f"dqn:{text}"], "not a readable PyTorch weights file"),
        (["--policy", f"dqn:{tmp_path / 'missing.pt'}"], "DQN checkpoint not found"),
        (["--policy", "greedy"], "--policy must be 'random' or 'dqn:PATH'"),
    ]
    for extra, message in cases:
        code, _, err = cli_in_process(monkeypatch, capsys, "generate", "invaders", "--n-seq", "0/0/1", "--quiet",
                           "--out", str(tmp_path / "x.zarr"), *extra)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (extra, err)
    assert not (tmp_path / "x.zarr").exists()


def test_missing_ale_py_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # what `import ale_py` meets when it is not installed
    code, _, err = cli_in_process(monkeypatch, capsys, "generate", "invaders", "--n-seq", "0/0/1", "--quiet",
                       "--out", str(tmp_path / "x.zarr"))
    assert code == 2
    assert err.strip().splitlines() == ["error: the Atari recorder needs gymnasium and ale-py "
                                        "(ale_py is missing): pip install rnem-bench[atari]"]


def test_generate_task_invaders_small(tmp_path, monkeypatch, capsys):
    code, _, err = cli_in_process(monkeypatch, capsys, "generate", "--task", "invaders", "--n-seq", "0/0/2", "--chunk-size", "2",
                       "--workers", "1", "--quiet", "--out", str(tmp_path / "inv.zarr"))
    assert code == 0, err
    ds = open_dataset(tmp_path / "inv.zarr")
    assert ds.array("test", "features").shape == (2, 26, 84, 84)
    # the canonical task records with the shipped DQN, pinned by its hash
    from rnem_bench.policies import SPACEINVADERS_DQN, SPACEINVADERS_DQN_SHA256

    assert ds.recipe.params["policy"] == f"dqn:{SPACEINVADERS_DQN}"
    assert ds.recipe.params["policy_sha256"] == SPACEINVADERS_DQN_SHA256 and ds.recipe.params["epsilon"] == 0.05


def test_shipped_policy_records_deterministically_per_seed(tmp_path):
    """A few recorded steps with the shipped DQN: the same seed gives the same bytes, another
    seed other frames and actions."""
    from rnem_bench.tasks import get_task

    def record(seed: int, name: str) -> Path:
        recipe = get_task("invaders").recipe(splits={"test": 2}, seed=seed)
        recipe = Recipe(recipe.generator, {**recipe.params, "steps": 6}, seed=seed, splits={"test": 2}, chunk_size=2)
        return generate_dataset(recipe, tmp_path / name, workers=1, progress=False)

    a, b, c = record(0, "a.zarr"), record(0, "b.zarr"), record(1, "c.zarr")
    assert_same_data(a, b)
    feats_a, feats_c = (open_dataset(p).array("test", "features")[:] for p in (a, c))
    assert feats_a.shape == (2, 7, 84, 84) and not np.array_equal(feats_a, feats_c)
