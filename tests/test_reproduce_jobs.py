"""`rnem-bench reproduce --jobs N`: jobs trained at once, each in its own process, end exactly as
when trained one at a time (losses, weights, scores); SIGTERM to the command stops every job
resumably and a rerun ends where an uninterrupted run ends; the budget is shared by waves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import run_cli
from rnem_bench.cli import cli
from rnem_bench.reproduce.jobs import JOB_LOG, Budget, Job
from rnem_bench.training import checkpoint as ckpt

NAME = "mini-balls4-rnem-k5"
# Two seeds of one reference run on the tiny preset (1 epoch of 2 updates, 32x32 frames).
ARGS = ["reproduce", "--tier", "mini", "--preset", "tiny", "--seeds", "2", "--models", NAME, "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The tiny datasets, made here: a process that generates a dataset inline leaves Numba's
    thread count in torch's OpenMP (2 here, whatever it was), so `--jobs 1` would train after it
    with other threads, and other sums, than the jobs' fresh processes."""
    from rnem_bench.tasks import get_task
    from rnem_bench.training.config import get_preset
    from rnem_bench.training.resolve import task_dataset

    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNEM_BENCH_DATA", str(root))
        for task in ("mini-balls4", "mini-balls678"):
            task_dataset(get_task(task), get_preset("tiny"), progress=False)
    return root


@pytest.fixture(scope="module")
def alone(data, tmp_path_factory) -> Path:
    """The two jobs one at a time (`--jobs 1`), as a user runs it, with one thread: as many as each
    job gets with `--jobs 2` from this process's one (conftest), so the same sums, the same bits."""
    out = tmp_path_factory.mktemp("alone")
    r = run_cli(*ARGS, "--out", str(out), "--jobs", "1", env={"RNEM_BENCH_DATA": str(data), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    return out


def _log_without_times(rundir: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("seconds", "train_sequences_per_s")} for row in ckpt.read_log(rundir)]


def _assert_same_runs(a: Path, b: Path) -> None:
    for seed in (0, 1):
        ra, rb = a / NAME / f"seed{seed}", b / NAME / f"seed{seed}"
        assert _log_without_times(ra) == _log_without_times(rb)
        wa, wb = ckpt.read_checkpoint(ra / ckpt.LAST)["model"], ckpt.read_checkpoint(rb / ckpt.LAST)["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa), f"seed {seed}"


def test_jobs_run_at_once_end_as_jobs_run_alone(data, alone, tmp_path, monkeypatch):
    monkeypatch.setenv("RNEM_BENCH_DATA", str(data))
    out = tmp_path / "together"
    r = CliRunner().invoke(cli, [*ARGS, "--out", str(out), "--jobs", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    for seed in (0, 1):
        rundir = out / NAME / f"seed{seed}"
        assert f"== train {NAME} seed {seed} -> {rundir} (log {rundir / JOB_LOG})" in lines
        assert any(line.startswith(f"== done {NAME} seed {seed}: max_epochs after 1 epochs (2 updates)") for line in lines)
        assert "1 thread(s)" in (rundir / JOB_LOG).read_text()  # its own output went to its log
    assert "ours (mean ± sd over seeds) | paper" in r.output
    _assert_same_runs(alone, out)
    files = sorted(p.relative_to(out / "results").as_posix() for p in (out / "results").glob("*/*.json"))
    assert files == sorted(p.relative_to(alone / "results").as_posix() for p in (alone / "results").glob("*/*.json"))
    assert len(files) == 4  # 2 seeds x 2 test sets, scored in the jobs' processes
    for name in files:
        ours, theirs = (json.loads((o / "results" / name).read_text()) for o in (out, alone))
        assert ours["metrics"] == theirs["metrics"], name


def test_sigterm_stops_every_job_resumably(data, alone, tmp_path):
    out = tmp_path / "cut"
    env = {**os.environ, "RNEM_BENCH_DATA": str(data), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from rnem_bench.cli import main; main()", *ARGS, "--out", str(out), "--jobs", "2",
           "--no-evaluate"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    configs = [out / NAME / f"seed{seed}" / ckpt.CONFIG for seed in (0, 1)]
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not all(p.exists() for p in configs):
        time.sleep(0.02)  # both jobs are training (config.json is written once signals are caught)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (143, 0), stderr  # 0: both had finished before the signal came
    if proc.returncode == 143:
        assert "rerun the same command to resume" in stderr and "Traceback" not in stderr
        for seed in (0, 1):
            summary = ckpt.read_summary(out / NAME / f"seed{seed}")
            assert summary["stop_reason"] in ("signal", "max_epochs"), stdout
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    _assert_same_runs(alone, out)


def test_the_budget_is_shared_by_waves_of_jobs(tmp_path):
    jobs = [Job(None, seed, tmp_path / str(seed)) for seed in range(5)]  # type: ignore[arg-type]
    alone, two = Budget(100.0, jobs, 1, start=time.perf_counter()), Budget(100.0, jobs, 2, start=time.perf_counter())
    assert alone.share(jobs[0]) == pytest.approx(20.0, rel=1e-3)   # 5 runs one after another
    assert two.share(jobs[0]) == pytest.approx(100 / 3, rel=1e-3)  # 3 waves: 2 + 2 + 1
    assert two.share(jobs[4]) == pytest.approx(100.0, rel=1e-3)    # the last one alone
    assert Budget(None, jobs).share(jobs[0]) is None
    assert Budget(100.0, jobs[1:]).share(jobs[0]) is None          # finished: no budget


def test_jobs_must_be_at_least_one():
    from rnem_bench.errors import RnemBenchError

    with pytest.raises(RnemBenchError, match="--jobs must be >= 1, got 0"):
        CliRunner().invoke(cli, [*ARGS, "--jobs", "0"], catch_exceptions=False)
