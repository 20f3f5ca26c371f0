"""From what the user typed (a model, a task name or a dataset path, a preset, flags) to a
resolved ``RunConfig``: find or generate the data, fill in the task's K and noise, pick a device."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rnem_bench.data.store import Dataset, open_dataset
from rnem_bench.device import resolve_device
from rnem_bench.errors import RnemBenchError
from rnem_bench.paths import data_dir, task_dataset_path
from rnem_bench.tasks import TASKS, Task, get_task, task_family
from rnem_bench.training.config import Preset, RunConfig, get_preset

DEFAULT_N_ACTIONS = 6  # SpaceInvaders' minimal action set


def task_dataset(task: Task, preset: Preset, progress: bool = True) -> Path:
    """The task's dataset for this preset (canonical, or the preset's small sizes), generated if missing."""
    from rnem_bench.data.generate import generate_dataset

    if preset.splits is None:
        recipe, path = task.recipe(), task_dataset_path(task.name)
    else:  # the preset's sizes, for the splits the task has (balls678 is test-only)
        recipe = task.recipe(splits={s: n for s, n in preset.splits.items() if s in task.splits})
        path = data_dir() / f"{task.name}-{recipe.fingerprint()}.zarr"
    if not (path.exists() and open_dataset(path, require_complete=False).complete):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Small datasets are quicker inline than through a pool of freshly spawned workers.
        workers = 1 if sum(recipe.splits.values()) <= 2048 else None
        generate_dataset(recipe, path, workers=workers, progress=progress)
    return path


def task_of(ds: Dataset) -> Task | None:
    """The trainable task whose generator and parameters made this dataset (any sizes or seed)."""
    return task_family(ds.recipe)


def dataset_for(name_or_path: str, preset: Preset, progress: bool = True) -> tuple[Dataset, Task | None]:
    """Open a dataset given as a task name (generated if missing) or as a path."""
    if name_or_path in TASKS:
        task = get_task(name_or_path)
        if task.train_task:
            raise RnemBenchError(f"task '{task.name}' is test-only: train on '{task.train_task}' and evaluate at K={task.k_eval}")
        try:
            path = task_dataset(task, preset, progress)
        except ImportError as err:
            raise RnemBenchError(f"cannot generate the '{task.name}' dataset here: {err}") from None
        return open_dataset(path), task
    path = Path(name_or_path)
    if not path.exists():
        raise RnemBenchError(f"--dataset '{name_or_path}' is neither a task ({', '.join(TASKS)}) nor an existing path")
    ds = open_dataset(path)
    return ds, task_of(ds)


def make_config(
    model: str, dataset: str, preset: str = "paper", *, k: int | None = None, noise: float | None = None,
    epochs: int | None = None, batch_size: int | None = None, lr: float = 1e-3, patience: int | None = None,
    seed: int = 0, steps: int | None = None, device: str = "auto", bf16: bool | None = None,
    compile: bool | None = None, n_actions: int | None = None, progress: bool = True,
    reference_decoder: bool | None = None, init: str = "original", cuda_graph: bool = False,
    hidden: int | None = None, probe_every: int = 0, probe_limit: int | None = 256,
) -> RunConfig:
    """Resolve every default: the preset's sizes, the task's K and noise, the device's speed flags
    (``fastpath.speed_defaults``: on CPU bf16 where native and the phase decoder; on CUDA eager
    fp32 with the resize decoder, which measured faster on an H200). A flag given wins.
    ``cuda_graph`` holds only where it can act: one process on CUDA (it is off by default: the
    captured update has not been timed on a GPU yet). ``hidden``: theta's size (default the paper's
    250; a model option, as the merging study's smaller-theta arm sets it)."""
    from rnem_bench.models.fastpath import speed_defaults

    from rnem_bench.models import MODELS, model_config

    if model not in MODELS:
        raise RnemBenchError(f"unknown model '{model}' (known: {', '.join(MODELS)})")
    p = get_preset(preset)
    ds, task = dataset_for(dataset, p, progress)
    if "train" not in ds.counts or "valid" not in ds.counts:
        raise RnemBenchError(f"{ds.path} needs 'train' and 'valid' splits to train on (it has {', '.join(ds.counts)})")
    shape = ds.array("train", "features").shape                  # (N, T+1, H, W)
    if shape[-1] != shape[-2]:
        raise RnemBenchError(f"{ds.path} has non-square frames {shape[-2:]}; models expect square frames")
    max_steps = shape[1] - 1
    steps = steps if steps is not None else min(p.steps or max_steps, max_steps)
    if not 1 <= steps <= max_steps:
        raise RnemBenchError(f"--steps must be in 1..{max_steps} for {ds.path}, got {steps}")
    use_actions = "actions" in ds.arrays
    options: dict[str, Any] = {}
    if use_actions:
        options["n_actions"] = n_actions if n_actions is not None else int(ds.attrs.get("n_actions", DEFAULT_N_ACTIONS))
    if hidden is not None:
        if hidden < 1:
            raise RnemBenchError(f"--hidden must be >= 1, got {hidden}")
        options["hidden"] = hidden
    fixed_k = model_config(model, shape[-1]).fixed_k
    k = fixed_k or (k if k is not None else (task.k_train if task else 5))  # an explicit 0 is refused below
    device = resolve_device(device)
    fast = speed_defaults(device)
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    config = RunConfig(
        model=model, dataset=str(Path(ds.path).resolve()), task=task.name if task else None,
        k=k, noise=noise if noise is not None else (task.noise if task else 0.2), seed=seed,
        image_size=int(shape[-1]), steps=steps, dataset_fingerprint=ds.fingerprint, preset=preset,
        epochs=_given(epochs, p.epochs), batch_size=_given(batch_size, p.batch_size), lr=lr,
        patience=_given(patience, p.patience), train_limit=p.train_limit, valid_limit=p.valid_limit,
        use_actions=use_actions, model_options=options, device=device,
        bf16=_given(bf16, fast.bf16), compile=_given(compile, fast.compile),
        reference_decoder=_given(reference_decoder, fast.reference_decoder),
        world_size=world_size, init=init,
        cuda_graph=cuda_graph and device.startswith("cuda") and world_size == 1,
        probe_every=probe_every, probe_limit=probe_limit,
    )
    config.validate()
    return config


def _given(value: Any, default: Any) -> Any:
    """The user's value when one was given (0 included, so validate() can refuse it), else the default."""
    return default if value is None else value


def default_rundir(config: RunConfig) -> Path:
    """``runs/MODEL-TASK-kK-seedS[-PRESET]``, with ``-2``, ``-3``... when taken (never clobber a run)."""
    name = config.task or Path(config.dataset).stem
    suffix = "" if config.preset == "paper" else f"-{config.preset}"
    base = Path("runs") / f"{config.model}-{name}-k{config.k}-seed{config.seed}{suffix}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
