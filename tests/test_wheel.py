"""An installed wheel is the whole package: its data files (the reference runs of the top-level
baselines/, the JSON Schemas, the shipped model and policy) are in it, building it warns of nothing,
and the reference runs load without the repository, so `rnem-bench reproduce --list` works from a
fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_reproduce_lists_the_reference_runs_from_an_installed_wheel(tmp_path):
    # Build from a copy of the sources git knows (a build writes build/ and *.egg-info beside them).
    src = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in listed.stdout.splitlines():
        if (REPO / name).is_file() and not name.startswith("leaderboards/"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "BuildBackendWarning" not in build.stderr, build.stderr[-4000:]  # e.g. data folders left undeclared
    wheel = next((tmp_path / "dist").glob("rnem_bench-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    data = {"rnem_bench/baselines/" + p.name for p in (REPO / "baselines").glob("*.toml")}
    data |= {"rnem_bench/schemas/" + p.name for p in (REPO / "rnem_bench" / "schemas").glob("*.json")}
    data |= {"rnem_bench/policies/" + p.name for p in (REPO / "rnem_bench" / "policies").glob("*.pt")}
    data |= {f"rnem_bench/pretrained/{p.parent.name}/{p.name}" for p in (REPO / "rnem_bench" / "pretrained").glob("*/*")
             if p.suffix in (".pt", ".json", ".jsonl")}
    assert len(data) > 19 and data <= shipped, sorted(data - shipped)
    assert "rnem_bench/generators/balls.py" in shipped

    # A fresh venv with the wheel installed; its dependencies come from this environment's
    # site-packages through a .pth line (a plain path: this env's editable install is not loaded).
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run([str(py), "-c", "from rnem_bench.cli import main; main()", "reproduce", "--tier", "mini", "--list"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    first, *runs = ran.stdout.strip().splitlines()
    assert first.startswith("reference runs from ") and str(Path(site).resolve()) in first  # the wheel's copy
    assert not first.startswith(f"reference runs from {REPO}")
    names = {line.split()[0] for line in runs}
    assert {"mini-balls4-rnem-k5", "mini-balls4-lstm", "mini-curtain-rnem"} <= names
