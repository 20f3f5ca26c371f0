"""Zarr v3 writer and reader for rnem-bench datasets (layout in ``schema.py``).

Writing is split into independent chunk tasks (one task = one chunk of sequences of one split).
Each task writes its rows of every array, then their CRC32s, then its ``_chunk_done`` flag, so
a killed run leaves at worst one half-written chunk, which is redone on resume. The root attr
``complete`` becomes true only after every chunk of every split is done.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from rnem_bench import __version__
from rnem_bench.dataset_format import ARRAYS, CRC_ARRAY, DONE_ARRAY, FORMAT_VERSION, SPLITS
from rnem_bench.errors import RnemBenchError
from rnem_bench.paths import data_dir, task_dataset_path
from rnem_bench.recipes import Recipe
from rnem_bench.tasks import TASKS

# Chosen by benchmarks/bench_storage.py: frames and label images are mostly zeros. Bit-shuffled
# zstd level 3 shrinks them ~40x and decodes fastest among the strong codecs (~1.3 GB/s per core,
# which feeds the loader); level 1 encodes faster but decodes slower and compresses less, lz4
# halves the ratio. Writes happen once, reads every epoch.
FRAME_CODEC = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle=zarr.codecs.BloscShuffle.bitshuffle)
STATE_CODEC = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle=zarr.codecs.BloscShuffle.shuffle)

Layout = dict[str, tuple[int, ...]]  # array name -> per-sequence shape (without the N axis)

# What zarr and its codecs raise on a truncated, corrupted or missing chunk file.
READ_ERRORS = (RuntimeError, ValueError, OSError, KeyError)


@dataclass(frozen=True)
class ChunkTask:
    """Sequences ``start:stop`` of ``split``; ``index`` is the chunk index along that split."""

    split: str
    index: int
    start: int
    stop: int


def chunk_tasks(recipe: Recipe) -> list[ChunkTask]:
    tasks = []
    for split in SPLITS:
        n = recipe.splits.get(split, 0)
        for index, start in enumerate(range(0, n, recipe.chunk_size)):
            tasks.append(ChunkTask(split, index, start, min(start + recipe.chunk_size, n)))
    return tasks


def _open_group(path: Path, mode: str) -> zarr.Group:
    try:
        node = zarr.open(store=str(path), mode=mode, zarr_format=3)
    except (FileNotFoundError, zarr.errors.NodeTypeValidationError, ValueError, KeyError) as err:
        raise RnemBenchError(f"{path} is not a readable rnem-bench Zarr v3 dataset ({type(err).__name__})") from None
    if not isinstance(node, zarr.Group):
        raise RnemBenchError(f"{path} is a Zarr array, not an rnem-bench dataset group")
    return node


# ---------------------------------------------------------------------------------------- write
class DatasetWriter:
    """Creates a dataset for a recipe, or reopens a partial one written by the same recipe."""

    def __init__(self, path: str | Path, recipe: Recipe, layout: Layout, extra_attrs: dict[str, Any] | None = None):
        self.path = Path(path)
        self.recipe = recipe
        self.layout = layout
        unknown = set(layout) - set(ARRAYS)
        if unknown:
            raise RnemBenchError(f"generator writes arrays unknown to the schema: {sorted(unknown)}")
        if self.path.exists() and not self.path.is_dir():
            raise RnemBenchError(f"{self.path} is a file, not a dataset directory; choose another --out")
        if self.path.exists() and any(self.path.iterdir()) and self._check_resumable():
            return
        self._create(extra_attrs or {})

    # The recipe in an existing store must be ours, or we refuse to touch it.
    def _check_resumable(self) -> bool:
        """True: resume the store as it is; False: it is ours but its creation was cut short."""
        if not (self.path / "zarr.json").exists():
            raise RnemBenchError(f"{self.path} exists and is not an rnem-bench dataset; refusing to overwrite it")
        root = _open_group(self.path, "r")
        theirs = root.attrs.get("fingerprint")
        if theirs is None:
            raise RnemBenchError(f"{self.path} is a Zarr store without an rnem-bench recipe; refusing to overwrite it")
        if theirs != self.recipe.fingerprint():
            raise RnemBenchError(
                f"{self.path} holds a different recipe (fingerprint {theirs}, ours {self.recipe.fingerprint()}); "
                "choose another --out or delete it"
            )
        if not root.attrs.get("created", True):
            return False  # killed while creating its arrays: nothing was generated yet, start again
        version = root.attrs.get("package_version")
        if not root.attrs.get("complete", False) and version != __version__:
            # chunks of two generator versions must not share one fingerprint
            raise RnemBenchError(f"{self.path} was started by rnem-bench {version}; finish it with that version or delete it")
        return True

    def _create(self, extra_attrs: dict[str, Any]) -> None:
        # The recipe goes in first, with created=false until every array exists, so a run killed
        # while creating is recognised as ours and recreated instead of refused as foreign.
        attrs = {
            "format_version": FORMAT_VERSION,
            "recipe": self.recipe.to_dict(),
            "fingerprint": self.recipe.fingerprint(),
            "counts": dict(self.recipe.splits),
            "arrays": list(self.layout),
            "package_version": __version__,
            **extra_attrs,
            "created": False,
            "complete": False,
        }
        try:
            root = zarr.open_group(store=str(self.path), mode="w", zarr_format=3, attributes=attrs)
        except OSError as err:
            raise RnemBenchError(f"cannot create {self.path}: {err.strerror or err}") from None
        names = list(self.layout)
        for split, n in self.recipe.splits.items():
            group = root.create_group(split)
            n_chunks = -(-n // self.recipe.chunk_size)
            for name, shape in self.layout.items():
                spec = ARRAYS[name]
                frame_like = len(shape) >= 2 and spec.dtype == np.uint8
                group.create_array(
                    name,
                    shape=(n, *shape),
                    chunks=(self.recipe.chunk_size, *shape),
                    dtype=spec.dtype,
                    fill_value=spec.fill,
                    compressors=FRAME_CODEC if frame_like else STATE_CODEC,
                    attributes={"description": spec.description},
                )
            group.create_array(DONE_ARRAY, shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0)
            group.create_array(CRC_ARRAY, shape=(n_chunks, len(names)), chunks=(1, len(names)), dtype="uint32", fill_value=0)
        root.attrs["created"] = True  # `complete` stays false until finalize()

    def pending(self) -> list[ChunkTask]:
        """Chunk tasks not yet written (all of them for a new dataset)."""
        root = _open_group(self.path, "r")
        done = {split: done_flags(root, split) for split in self.recipe.splits}
        return [t for t in chunk_tasks(self.recipe) if not done[t.split][t.index]]

    def finalize(self) -> None:
        """Mark the dataset complete, after checking that every chunk is written."""
        left = self.pending()
        if left:
            raise RnemBenchError(f"{self.path}: {len(left)} chunks are still missing; rerun the same command to resume")
        root = zarr.open_group(store=str(self.path), mode="r+", zarr_format=3)
        root.attrs["complete"] = True


def done_flags(root: zarr.Group, split: str) -> np.ndarray:
    """The split's ``_chunk_done`` flags; a damaged flag reads as 0, so its chunk is redone."""
    flags = root[split][DONE_ARRAY]
    try:
        return flags[:]
    except READ_ERRORS:
        out = np.zeros(flags.shape, np.uint8)
        for i in range(len(out)):
            try:
                out[i] = flags[i]
            except READ_ERRORS:
                pass
        return out


def chunk_crc32(arrays: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.array([zlib.crc32(np.ascontiguousarray(arrays[n]).data) for n in names], dtype=np.uint32)


def write_chunk(path: str | Path, task: ChunkTask, arrays: dict[str, np.ndarray]) -> None:
    """Write one task's rows of every array, then its checksums, then its done flag.

    Safe to call from many processes at once: every task owns distinct Zarr chunks.
    """
    # Every chunk is written once and whole: skip zarr's per-chunk "is it all fill value?" scan,
    # which costs more than compressing the chunk.
    with zarr.config.set({"array.write_empty_chunks": True}):
        _write_chunk(path, task, arrays)


def _write_chunk(path: str | Path, task: ChunkTask, arrays: dict[str, np.ndarray]) -> None:
    root = zarr.open_group(store=str(path), mode="r+", zarr_format=3)
    names = list(root.attrs["arrays"])
    group = root[task.split]
    n = task.stop - task.start
    stored = {}
    for name in names:
        data = arrays[name]
        expected = (n, *group[name].shape[1:])
        if data.shape != expected:
            raise RnemBenchError(f"generator produced {name} of shape {data.shape}, schema expects {expected}")
        stored[name] = data.astype(group[name].dtype, copy=False)  # the checksum is of the stored bytes
        group[name][task.start : task.stop] = stored[name]
    group[CRC_ARRAY][task.index] = chunk_crc32(stored, names)
    group[DONE_ARRAY][task.index] = 1


# ----------------------------------------------------------------------------------------- read
@dataclass
class Dataset:
    """A read-only handle on a dataset: ``ds.array("test", "features")`` is a lazy Zarr array."""

    path: Path
    root: zarr.Group

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.root.attrs)

    @property
    def recipe(self) -> Recipe:
        return Recipe.from_dict(self.root.attrs["recipe"])

    @property
    def fingerprint(self) -> str:
        return str(self.root.attrs["fingerprint"])

    @property
    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.root.attrs["counts"].items()}

    @property
    def arrays(self) -> list[str]:
        return list(self.root.attrs["arrays"])

    @property
    def has_groups(self) -> bool:
        return "groups" in self.arrays

    @property
    def complete(self) -> bool:
        return bool(self.root.attrs.get("complete", False))

    def array(self, split: str, name: str) -> "StoredArray":
        if split not in self.counts:
            raise RnemBenchError(f"{self.path} has no '{split}' split (it has {', '.join(self.counts)})")
        if name not in self.arrays:
            raise RnemBenchError(f"{self.path} has no '{name}' array (it has {', '.join(self.arrays)})")
        return StoredArray(self.root[split][name], f"{self.path}/{split}/{name}")


class StoredArray:
    """A dataset's lazy Zarr array whose reads turn a damaged chunk into a one-line error
    (naming the array and pointing at `verify`) instead of a codec's traceback."""

    def __init__(self, array: zarr.Array, where: str):
        self.zarr, self.where = array, where
        self.shape, self.dtype, self.chunks, self.nbytes = array.shape, array.dtype, array.chunks, array.nbytes

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, selection: Any) -> np.ndarray:
        try:
            return self.zarr[selection]
        except READ_ERRORS as err:
            raise RnemBenchError(f"{self.where}: unreadable chunk ({type(err).__name__}: {str(err)[:80]}); "
                                 "run `rnem-bench verify` and regenerate") from None


def open_dataset(path: str | Path, require_complete: bool = True) -> Dataset:
    """Open a dataset, refusing missing, foreign, newer-format or (by default) incomplete ones."""
    path = Path(path)
    if not path.exists():
        raise RnemBenchError(f"dataset not found: {path}")
    if not (path / "zarr.json").exists():
        raise RnemBenchError(f"{path} is not a Zarr v3 store (no zarr.json)")
    root = _open_group(path, "r")
    attrs = root.attrs
    if "fingerprint" not in attrs or "recipe" not in attrs:
        raise RnemBenchError(f"{path} is a Zarr store but not an rnem-bench dataset (no recipe)")
    if int(attrs.get("format_version", -1)) > FORMAT_VERSION:
        raise RnemBenchError(f"{path} has format version {attrs['format_version']}; this rnem-bench reads <= {FORMAT_VERSION}")
    ds = Dataset(path, root)
    split = name = "?"
    try:  # every split and array the attributes promise must open (their metadata is intact)
        for split in ds.counts:
            for name in ds.arrays:
                if not isinstance(root[split][name], zarr.Array):
                    raise KeyError(name)
    except Exception as err:  # zarr raises KeyError, JSONDecodeError, ... for damaged metadata
        raise RnemBenchError(f"{path}: metadata of {split}/{name} is missing or unreadable ({type(err).__name__}); "
                             "the dataset is damaged: delete it and generate it again") from None
    if require_complete and not ds.complete:
        raise RnemBenchError(f"{path} is incomplete (generation was interrupted); rerun the same generate command to finish it")
    return ds


def resolve_dataset_path(name_or_path: str) -> Path:
    """A path to a dataset, or a task name whose canonical dataset lives in the data dir."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if name_or_path in TASKS:
        canonical = task_dataset_path(name_or_path)
        if canonical.exists():
            return canonical
        raise RnemBenchError(
            f"task '{name_or_path}' has no dataset in {data_dir()} yet; run `rnem-bench generate --task {name_or_path}`"
        )
    raise RnemBenchError(f"dataset not found: {name_or_path} (neither a path nor a task name)")
