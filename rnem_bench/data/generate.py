"""Run a recipe's chunk tasks (locally in a process pool, or on a Dask cluster) and finish the dataset.

Every task is independent and deterministic (``generators/__init__.py``), so the finished arrays are
byte-identical whatever the worker count, scheduler or number of interruptions.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rnem_bench.data.store import ChunkTask, DatasetWriter, chunk_tasks, write_chunk
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators import empty_chunk, get_generator
from rnem_bench.recipes import Recipe

# Numba's default threading layer must not run two parallel kernels at once in one process
# (a Dask worker runs several tasks in threads): one kernel at a time, each using all its threads.
_KERNEL_LOCK = threading.Lock()
# Each worker thread fills the same chunk buffers task after task (write_chunk is done with them
# when it returns): fresh pages for every chunk would halve the simulators' speed.
_BUFFERS = threading.local()


def resolve_params(recipe: Recipe) -> Any:
    """The generator's Params for a recipe, validated (raises RnemBenchError on bad values)."""
    gen = get_generator(recipe.generator)
    try:
        params = gen.Params(**recipe.params)
    except TypeError as err:
        raise RnemBenchError(f"recipe parameters do not match generator '{recipe.generator}': {err}") from None
    params.validate()
    return params


@lru_cache(maxsize=8)
def _load_recipe(recipe_json: str) -> tuple[Recipe, Any, Any]:
    """Recipe, generator module and Params, parsed once per worker process."""
    recipe = Recipe.from_dict(json.loads(recipe_json))
    return recipe, get_generator(recipe.generator), resolve_params(recipe)


def run_task(path: str, recipe_json: str, task: ChunkTask) -> ChunkTask:
    """Generate and write one chunk (runs in a worker process or on a Dask worker)."""
    recipe, gen, params = _load_recipe(recipe_json)
    with _KERNEL_LOCK:
        arrays = gen.make_chunk(params, recipe.seed, task.split, task.start, task.stop, out=_buffers(recipe_json, task))
    write_chunk(path, task, arrays)
    return task


def _buffers(recipe_json: str, task: ChunkTask) -> dict[str, Any]:
    """This thread's chunk buffers for the recipe's layout and the task's length (kept until either changes)."""
    key = (recipe_json, task.stop - task.start)
    if getattr(_BUFFERS, "key", None) != key:
        _, gen, params = _load_recipe(recipe_json)
        _BUFFERS.key, _BUFFERS.arrays = key, empty_chunk(gen.layout(params), task.stop - task.start)
    return _BUFFERS.arrays


def _init_worker(threads: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))  # NUMBA_NUM_THREADS caps it


def _run_local(path: str, recipe_json: str, tasks: list[ChunkTask], workers: int, bar: tqdm) -> None:
    if workers == 1:
        for task in tasks:
            run_task(path, recipe_json, task)
            bar.update(1)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: a forked child of a process that already ran Numba threads can deadlock.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(run_task, path, recipe_json, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                fut.result()
                bar.update(1)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _run_dask(path: str, recipe_json: str, tasks: list[ChunkTask], scheduler: Any, bar: tqdm) -> None:
    from distributed import Client, as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(run_task, [path] * len(tasks), [recipe_json] * len(tasks), tasks, pure=False)
        for fut in dask_completed(futures):
            fut.result()
            bar.update(1)
    finally:
        if client is not scheduler:
            client.close()


def generate_dataset(
    recipe: Recipe,
    out: str | Path,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> Path:
    """Write (or finish writing) the dataset of ``recipe`` at ``out`` and mark it complete.

    ``workers``: local processes (default: CPU count; 1 runs inline). ``scheduler``: a Dask
    scheduler address or ``distributed.Client``; when given, tasks run on that cluster instead.
    """
    out = Path(out)
    gen = get_generator(recipe.generator)
    params = resolve_params(recipe)
    extra = gen.attrs(params) if hasattr(gen, "attrs") else {}
    writer = DatasetWriter(out, recipe, gen.layout(params), extra_attrs=extra)
    tasks = writer.pending()
    if tasks:
        recipe_json = json.dumps(recipe.to_dict(), sort_keys=True)
        total = len(chunk_tasks(recipe))
        desc = f"{out.name} ({recipe.generator})"
        with tqdm(total=total, initial=total - len(tasks), desc=desc, unit="chunk", disable=not progress) as bar:
            if scheduler is not None:
                _run_dask(str(out), recipe_json, tasks, scheduler, bar)
            else:
                n = workers or os.cpu_count() or 1
                _run_local(str(out), recipe_json, tasks, max(1, min(n, len(tasks))), bar)
    writer.finalize()
    return out
