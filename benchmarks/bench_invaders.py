"""Space Invaders recording speed: environment frames/s and sequences/s, 1 and 2 workers.

References measured in the same run, on the same machine:

- ``emulator``: ALE alone, ``ale.act`` in a loop with no screen read: the ceiling any recorder
  can reach per process;
- ``gymnasium``: the stock ``ALE/SpaceInvaders-v5`` environment (frameskip 4, grayscale
  observations, sticky actions off) stepped through ``env.step``, each observation resized and
  binarised like ours; what a script built on gymnasium's public API would record at.

Then ours: the recorder's episode loop (``AtariGame`` with max-pooling of the last two raw
screens, area resize, binarisation) in one process, and ``generate_dataset`` end to end (Zarr
writes included) with the random policy and with the shipped DQN (the canonical task's policy) on
1 and 2 workers.
"Env frames" are raw emulator frames (4 per agent step); each stored sequence holds steps + 1
recorded agent steps.

    python benchmarks/bench_invaders.py                 # 128 sequences per dataset run
    python benchmarks/bench_invaders.py --n-seq 256     # steadier figures
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rnem_bench.data.generate import generate_dataset
from rnem_bench.dqn.ale import AtariGame, EnvConfig, require_ale, rom_id
from rnem_bench.dqn.frames import binarize, resize_area
from rnem_bench.generators import invaders
from rnem_bench.recipes import Recipe

FRAME_SKIP = 4


def bench_emulator(seconds: float) -> float:
    """Raw ALE frames/s with random minimal-set actions and no screen reads."""
    game = AtariGame(EnvConfig())
    rng = np.random.default_rng(0)
    ale, actions = game.ale, game.actions
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in rng.integers(len(actions), size=400):
            ale.act(actions[a])
            if ale.game_over():
                ale.reset_game()
        n += 400
    return n / (time.perf_counter() - t0)


def bench_gymnasium(seconds: float, size: int = 84, threshold: float = 0.0001) -> float:
    """Raw frames/s of gymnasium's ALE/SpaceInvaders-v5 (frameskip 4) plus the same resize + binarise."""
    ale_py = require_ale()
    import gymnasium as gym
    from ale_py.env import AtariEnv

    gym.register_envs(ale_py)  # gymnasium >= 1.0 registers the ALE/ ids only when asked
    env = gym.make("ALE/SpaceInvaders-v5", obs_type="grayscale", frameskip=FRAME_SKIP,
                   repeat_action_probability=0.0, full_action_space=False)
    assert isinstance(env.unwrapped, AtariEnv)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        binarize(resize_area(obs, size), threshold)
        steps += 1
        if terminated or truncated:
            env.reset()
    env.close()
    return steps * FRAME_SKIP / (time.perf_counter() - t0)


def bench_recorder_loop(seconds: float) -> float:
    """Raw frames/s of the recorder's own episode loop (random policy, one process, no writes)."""
    params = invaders.Params()
    rec = invaders.Recorder(params)
    rng = np.random.default_rng(0)
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        played, _ = rec.play(rng, max_frames=10_000)
        frames += len(played)
    return frames * FRAME_SKIP / (time.perf_counter() - t0)


def bench_dataset(recipe: Recipe, workers: int, tmp: Path, label: str, loop_seq_rate: float) -> tuple[float, float, float]:
    """generate_dataset end to end: (sequences/s, recorded env frames/s, seconds of fixed start-up cost).

    The start-up cost (spawning the worker processes, importing zarr, Numba and ale-py in each,
    loading the ROM; torch too for DQN policies) is measured on a run of one single-sequence chunk per worker; it is paid once per
    ``generate`` call, so it dominates small runs and vanishes on the 70,000-sequence dataset.
    ``loop_seq_rate`` (sequences/s of the bare recorder loop) discounts the sequences that run records.
    With one worker the run is inline, so its start-up also warms this process's recorder cache.
    """
    tiny = replace(recipe, splits={"train": workers}, chunk_size=1)
    t0 = time.perf_counter()
    generate_dataset(tiny, tmp / f"{label}-startup.zarr", workers=workers, progress=False)
    startup = time.perf_counter() - t0 - workers / loop_seq_rate
    out = tmp / f"{label}.zarr"
    t0 = time.perf_counter()
    generate_dataset(recipe, out, workers=workers, progress=False)
    dt = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    n = sum(recipe.splits.values())
    frames = n * (recipe.params["steps"] + 1) * FRAME_SKIP
    return n / dt, frames / dt, max(0.0, startup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of each single-process measurement")
    ap.add_argument("--n-seq", type=int, default=128, help="sequences per generate_dataset run")
    ap.add_argument("--chunk-size", type=int, default=8)
    args = ap.parse_args()

    require_ale()
    rom_id("SpaceInvaders")
    emulator = bench_emulator(args.seconds)
    gym_rate = bench_gymnasium(args.seconds)
    loop = bench_recorder_loop(args.seconds)
    loop_seq_rate = loop / FRAME_SKIP / (invaders.Params().steps + 1)
    print(f"ALE emulator only           : {emulator:9.0f} env frames/s  (ceiling, 1 process)")
    print(f"gymnasium v5 + preprocessing: {gym_rate:9.0f} env frames/s  ({gym_rate / emulator:.0%} of the ceiling)")
    print(f"recorder episode loop       : {loop:9.0f} env frames/s  ({loop / emulator:.0%} of the ceiling, "
          f"{loop / gym_rate:.2f}x gymnasium; max-pooled, so 2 screen reads per agent step)")

    tmp = Path(tempfile.mkdtemp(prefix="rnem-bench-invaders-"))
    try:
        splits = {"train": args.n_seq}
        recipe = Recipe("invaders", asdict(invaders.Params()), seed=0, splits=splits, chunk_size=args.chunk_size)
        rates = {}
        for workers in (1, 2):
            seqs, frames, startup = bench_dataset(recipe, workers, tmp, f"random{workers}", loop_seq_rate)
            rates[workers] = seqs
            print(f"generate, random policy, {workers} worker{'s' if workers > 1 else ' '}: {seqs:7.1f} sequences/s, "
                  f"{frames:7.0f} recorded env frames/s ({args.n_seq} x 26 frames, Zarr writes and start-up "
                  f"included; start-up alone {startup:.1f} s)")
        print(f"2 workers / 1 worker        : {rates[2] / rates[1]:9.2f}x end to end (at most 2 on 2 free cores; "
              f"start-up and other jobs on the cores lower it)")

        # The canonical task's recording: the shipped DQN (rnem_bench/policies), epsilon 0.05.
        from rnem_bench.tasks import get_task

        canonical = get_task("invaders").recipe()
        dqn_recipe = Recipe("invaders", canonical.params, seed=0, splits=splits, chunk_size=args.chunk_size)
        for workers in (1, 2):
            seqs, frames, _ = bench_dataset(dqn_recipe, workers, tmp, f"dqn{workers}", loop_seq_rate)
            print(f"generate, shipped DQN, {workers} worker{'s' if workers > 1 else ' '}: {seqs:7.1f} sequences/s, "
                  f"{frames:7.0f} recorded env frames/s ({seqs / rates[workers]:.2f}x the random policy: one "
                  f"Nature-DQN forward pass per agent step on CPU; the canonical task's recording)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
