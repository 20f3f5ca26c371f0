"""Zarr datasets: determinism, resume after a kill, Dask = local, verify, loader, bad input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr

from conftest import assert_same_data, kill_generation_after, run_cli, tiny_balls_recipe
from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.loader import SequenceLoader
from rnem_bench.data.store import DatasetWriter, open_dataset, write_chunk
from rnem_bench.data.verify import verify_dataset
from rnem_bench.dataset_format import DONE_ARRAY
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators import balls


def test_dataset_is_complete_and_verifies(tiny_balls):
    ds = open_dataset(tiny_balls)
    assert ds.complete and ds.counts == {"train": 32, "valid": 16, "test": 16}
    assert ds.array("train", "features").shape == (32, 9, 64, 64)
    assert ds.fingerprint == tiny_balls_recipe().fingerprint()
    assert "OK" in verify_dataset(tiny_balls, progress=False)


def test_same_seed_same_bytes_whatever_the_workers_and_chunking(tmp_path, tiny_balls):
    two = generate_dataset(tiny_balls_recipe(), tmp_path / "two.zarr", workers=2, progress=False)
    assert_same_data(tiny_balls, two)
    # a sequence's bytes do not depend on the chunk it falls in either
    rechunked = generate_dataset(replace(tiny_balls_recipe(), chunk_size=5), tmp_path / "c5.zarr", workers=1, progress=False)
    np.testing.assert_array_equal(open_dataset(rechunked).array("train", "features")[:],
                                  open_dataset(tiny_balls).array("train", "features")[:])
    other = generate_dataset(replace(tiny_balls_recipe(), seed=1), tmp_path / "s1.zarr", workers=1, progress=False)
    assert not np.array_equal(open_dataset(other).array("train", "positions")[:],
                              open_dataset(tiny_balls).array("train", "positions")[:])


def test_dask_cluster_gives_the_same_dataset(tmp_path, tiny_balls):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        path = generate_dataset(tiny_balls_recipe(), tmp_path / "dask.zarr", scheduler=client, progress=False)
    assert_same_data(tiny_balls, path)


def test_half_written_chunk_is_redone_on_resume(tmp_path, tiny_balls):
    recipe = tiny_balls_recipe()
    path = tmp_path / "partial.zarr"
    writer = DatasetWriter(path, recipe, balls.layout(balls.Params(**recipe.params)))
    tasks = writer.pending()
    params = balls.Params(**recipe.params)
    write_chunk(path, tasks[0], balls.make_chunk(params, recipe.seed, tasks[0].split, tasks[0].start, tasks[0].stop))
    # chunk 1: garbage features written, then "killed" before its done flag
    zarr.open_group(str(path))[tasks[1].split]["features"][tasks[1].start : tasks[1].stop] = 1
    with pytest.raises(RnemBenchError, match="incomplete"):
        open_dataset(path)
    assert len(DatasetWriter(path, recipe, balls.layout(params)).pending()) == len(tasks) - 1
    generate_dataset(recipe, path, workers=1, progress=False)
    assert_same_data(tiny_balls, path)


def test_killed_generation_resumes_to_identical_data(tmp_path):
    args = ["generate", "balls", "--n-seq", "480/0/0", "--chunk-size", "8", "--steps", "12", "--workers", "1", "--quiet"]
    killed, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    done = kill_generation_after(args, killed, chunks=3)
    assert 0 < done < 60, "the run should be killed part-way"
    with pytest.raises(RnemBenchError, match="incomplete"):
        open_dataset(killed)
    assert run_cli(*args, "--out", str(killed)).returncode == 0
    assert run_cli(*args, "--out", str(clean)).returncode == 0
    assert_same_data(killed, clean)


def test_verify_detects_corruption(tmp_path, tiny_balls):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny_balls, copy)
    chunk = next((copy / "valid" / "features" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.unlink()  # a truncated store: one chunk of frames lost
    with pytest.raises(RnemBenchError, match="checksum mismatch"):
        verify_dataset(copy, progress=False)


def _first_chunk_file(folder: Path) -> Path:
    return min(f for f in folder.rglob("*") if f.is_file())


@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_damaged_chunks_are_one_line_errors(tmp_path, tiny_balls, damage):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny_balls, copy)
    chunk = _first_chunk_file(copy / "test" / "features" / "c")
    data = bytearray(chunk.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2 :] = bytes(b ^ 0xFF for b in data[len(data) // 2 :])
    chunk.write_bytes(bytes(data))
    for args in (["verify", str(copy), "--quiet"], ["show", str(copy), "--out", str(tmp_path / "x.png")]):
        r = run_cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "test" in lines[0], r.stderr[-2000:]
    assert run_cli("info", str(copy)).returncode == 0  # metadata intact: info still describes it


def test_damaged_metadata_and_done_flags(tmp_path, tiny_balls):
    import shutil

    broken = tmp_path / "meta.zarr"
    shutil.copytree(tiny_balls, broken)
    (broken / "test" / "groups" / "zarr.json").write_text("{trunc")
    for args in (["info", str(broken)], ["show", str(broken)]):
        r = run_cli(*args)
        assert r.returncode == 2 and "test/groups is missing or unreadable" in r.stderr, r.stderr[-2000:]
    # a damaged done flag reads as "not done": rerunning generate redoes that chunk and repairs it
    flags = tmp_path / "flags.zarr"
    shutil.copytree(tiny_balls, flags)
    flag = _first_chunk_file(flags / "train" / DONE_ARRAY / "c")
    flag.write_bytes(flag.read_bytes()[:3])
    zarr.open_group(str(flags), mode="r+").attrs["complete"] = False
    assert run_cli("info", str(flags)).returncode == 0
    generate_dataset(tiny_balls_recipe(), flags, workers=1, progress=False)
    assert "OK" in verify_dataset(flags, progress=False)
    assert_same_data(flags, tiny_balls)


def test_a_store_killed_while_being_created_is_recreated(tmp_path):
    path = tmp_path / "mid.zarr"
    recipe = tiny_balls_recipe()
    layout = balls.layout(balls.Params(n_balls=(3, 3), steps=8))
    DatasetWriter(path, recipe, layout)
    zarr.open_group(str(path), mode="r+").attrs["created"] = False  # as if killed before its arrays existed
    generate_dataset(recipe, path, workers=1, progress=False)
    assert "OK" in verify_dataset(path, progress=False)


def test_loader_visits_every_sequence_once_per_epoch(tiny_balls):
    ds = open_dataset(tiny_balls)
    loader = SequenceLoader(ds, "train", arrays=("features", "n_objects", "positions"), batch_size=5, drop_last=False,
                            buffer_chunks=2)
    firsts = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        pos = np.concatenate([b["positions"].numpy() for b in loader])
        assert pos.shape == (32, 9, 3, 2)
        # identify sequences by their first position: each of the 32 appears once
        ref = ds.array("train", "positions")[:, 0, 0]
        keys = {tuple(p) for p in pos[:, 0, 0]}
        assert keys == {tuple(p) for p in ref}
        firsts.append(pos[:, 0, 0].copy())
    assert not np.array_equal(firsts[0], firsts[1])  # reshuffled
    assert len(loader) == 7
    batch = next(iter(SequenceLoader(ds, "train", batch_size=8)))
    assert batch["features"].dtype.is_floating_point is False and batch["features"].shape == (8, 9, 64, 64)
    # DDP ranks see disjoint shares
    r0 = SequenceLoader(ds, "train", batch_size=1, drop_last=False, rank=0, world_size=2)
    r1 = SequenceLoader(ds, "train", batch_size=1, drop_last=False, rank=1, world_size=2)
    assert len(r0) + len(r1) == 32


def test_cli_generate_info_verify_show(tmp_path):
    out = tmp_path / "b.zarr"
    r = run_cli("generate", "balls", "--n-balls", "6-8", "--n-seq", "8/0/8", "--steps", "4", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    info = run_cli("info", str(out))
    assert info.returncode == 0 and "fingerprint" in info.stdout and "complete" in info.stdout
    assert run_cli("verify", str(out), "--quiet").returncode == 0
    for suffix in ("png", "gif"):
        r = run_cli("show", str(out), "--index", "2", "--out", str(tmp_path / f"seq.{suffix}"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / f"seq.{suffix}").stat().st_size > 0
    assert open_dataset(out).array("test", "n_objects")[:].min() >= 6


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", "balls", "--n-balls", "8-6"], "inverted"),
        (["generate", "balls", "--n-balls", "40"], "do not fit"),
        (["generate", "balls", "--n-balls", "x"], "not a number"),
        (["generate", "balls", "--n-seq", "10/10"], "TRAIN/VALID/TEST"),
        (["generate", "curtain", "--curtain-size", "0.6-0.2"], "inverted"),
        (["generate", "--task", "balls9"], "unknown task"),
        (["info", "no/such/place.zarr"], "not found"),
        (["show", "no/such/place.zarr"], "not found"),
        (["generate", "balls", "--radius", "nan"], "radius must be a finite number"),
        (["generate", "balls", "--speed", "inf"], "speed must be a finite number"),
        (["generate", "balls", "--radius", "3", "--heavy-radius-ratio", "0.5", "--n-balls", "9"], "do not fit"),
        (["generate", "--n-seq", "10/0/0", "balls"], "put --n-seq after the generator name"),
        (["generate", "balls", "--out", "pyproject.toml"], "is a file"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.stderr


def test_refuses_foreign_or_different_stores(tmp_path, tiny_balls):
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("x", shape=(3,), dtype="uint8")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    for path, message in [(foreign, "without an rnem-bench recipe"), (junk, "not an rnem-bench dataset"),
                          (tiny_balls, "different recipe")]:
        r = run_cli("generate", "balls", "--n-seq", "4/4/4", "--out", str(path), "--quiet")
        assert r.returncode == 2 and message in r.stderr, r.stderr
    assert (junk / "notes.txt").read_text() == "mine"  # nothing overwritten
    assert "OK" in verify_dataset(tiny_balls, progress=False)
    r = run_cli("verify", str(foreign))
    assert r.returncode == 2 and "not an rnem-bench dataset" in r.stderr


def test_show_refuses_a_split_the_dataset_lacks(tmp_path, tiny_balls):
    r = run_cli("show", str(tiny_balls), "--split", "bogus", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "--split bogus" in r.stderr and not (tmp_path / "x.png").exists()


def test_task_recipes_are_pinned():
    """Canonical fingerprints change only on purpose (it invalidates every leaderboard entry)."""
    from rnem_bench.tasks import get_task

    fingerprints = {name: get_task(name).recipe().fingerprint() for name in PINNED_FINGERPRINTS}
    assert fingerprints == PINNED_FINGERPRINTS


def test_generate_task_with_other_sizes_is_marked_non_canonical(tmp_path):
    r = run_cli("generate", "--task", "curtain", "--n-seq", "4/4/4", "--quiet", env={"RNEM_BENCH_DATA": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "cannot enter the leaderboard" in r.stdout
    written = list(tmp_path.glob("curtain-*.zarr"))
    assert len(written) == 1 and not (tmp_path / "curtain.zarr").exists()
    assert "curtain" in open_dataset(written[0]).arrays
    r = run_cli("info", "curtain", env={"RNEM_BENCH_DATA": str(tmp_path)})
    assert r.returncode == 2 and "generate --task curtain" in r.stderr


PINNED_FINGERPRINTS = {"balls4": "948fa5b2af36adbb", "balls678": "b0fc0d714e938eb0", "curtain": "9ddadfc8aee1fbc1",
                       "invaders": "fb39fc5fecca7887", "mini-balls4": "070f6f76ebc11b1f",
                       "mini-balls678": "2cb0a6c05ef5effe", "mini-curtain": "152e1b08319c9534"}
