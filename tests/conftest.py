"""Shared fixtures: tiny datasets generated once per session, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import pytest

from rnem_bench.recipes import Recipe


def tiny_balls_recipe(**overrides) -> Recipe:
    from rnem_bench.generators.balls import Params

    params = Params(**{"n_balls": (3, 3), "steps": 8, **overrides})
    return Recipe("balls", asdict(params), seed=0, splits={"train": 32, "valid": 16, "test": 16}, chunk_size=16)


@pytest.fixture(scope="session")
def tiny_balls(tmp_path_factory) -> Path:
    """A complete 32/16/16 balls dataset, 3 balls, 9 frames of 64x64."""
    from rnem_bench.data.generate import generate_dataset

    return generate_dataset(tiny_balls_recipe(), tmp_path_factory.mktemp("data") / "tiny.zarr", workers=1, progress=False)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (as a user would)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from rnem_bench.cli import main; main()", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout,
    )


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def cli_in_process(monkeypatch, capsys, *args: str) -> Ran:
    """``rnem-bench ARGS...`` through the console entry point in this process (a subprocess per
    case costs seconds of imports); like ``run_cli``'s result."""
    from rnem_bench.cli import main

    monkeypatch.setattr(sys, "argv", ["rnem-bench", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out = capsys.readouterr()
    return Ran(code, out.out, out.err)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU cores are shared with other jobs: two spinning intra-op threads make the tiny
    models of the tests 10-50x slower under load, one thread keeps them fast and steady."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def kill_generation_after(args: list[str], out: Path, chunks: int, timeout: float = 120) -> int:
    """Start ``rnem-bench generate ARGS --out OUT``, SIGKILL it once ``chunks`` train chunks are
    done, and return how many were done (a resume test then reruns the same command)."""
    import signal
    import time

    import zarr

    from rnem_bench.dataset_format import DONE_ARRAY

    cmd = [sys.executable, "-c", "from rnem_bench.cli import main; main()", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None:
        try:
            done = int(zarr.open_group(str(out), mode="r")["train"][DONE_ARRAY][:].sum())
        except Exception:  # the store is not there yet, or half-created
            done = 0
        if done >= chunks:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return done


def assert_same_data(a: Path, b: Path) -> None:
    """Every array of every split of two datasets holds the same bytes."""
    from rnem_bench.data.store import open_dataset

    x, y = open_dataset(a), open_dataset(b)
    assert (x.counts, x.arrays) == (y.counts, y.arrays)
    for split in x.counts:
        for name in x.arrays:
            assert x.array(split, name)[:].tobytes() == y.array(split, name)[:].tobytes(), f"{split}/{name}"
