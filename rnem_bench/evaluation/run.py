"""Evaluate a trained run of ours: predictions and rollouts of its best checkpoint on a test split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rnem_bench.data.loader import SequenceLoader
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.protocol import SIM_STEPS
from rnem_bench.evaluation.results import make_result


def default_k(run_task: str | None, run_k: int, task: str | None) -> int:
    """Components at test time when none is given: the run's own K on the task it trained on (a K=8
    run on mini-balls4 is scored at K=8), the task's ``k_eval`` on another task (8 on balls678: the
    paper's extrapolation test), the run's K where neither task is named."""
    from rnem_bench.tasks import get_task

    if task is None or task == run_task:
        return run_k
    return get_task(task).k_eval


def evaluate_run(
    rundir: str | Path, task: str | None = None, k: int | None = None, dataset: str | Path | None = None,
    split: str = "test", batch_size: int = 64, limit: int | None = None, device: str = "cpu",
    which: str = "best", cuda_graph: bool = False,
) -> dict[str, Any]:
    """Score ``rundir``'s checkpoint on a test split and return a validated result object.

    ``task``: the task to evaluate on (default: the run's own); ``dataset``: a dataset path
    (default: the task's canonical dataset, else the run's dataset); ``k``: components at test
    time (default: ``default_k``: the run's K on its own task, the task's ``k_eval`` on another, e.g.
    8 on balls678); ``cuda_graph``: on CUDA, replay each full batch's prediction and rollout as a
    CUDA graph (``models.Inference``).
    """
    from rnem_bench.data.store import resolve_dataset_path
    from rnem_bench.data.store import open_dataset
    from rnem_bench.training.checkpoint import load_run, read_summary

    t0 = time.perf_counter()
    from rnem_bench.models import Inference
    from rnem_bench.models.fastpath import fast_layout, native_bf16

    model, cfg = load_run(rundir, which=which, device=device)
    model = fast_layout(model, device)
    model.decoder.use_reference(cfg.reference_decoder)
    bf16 = cfg.bf16 and native_bf16(device)  # run as trained; fp32 where bf16 is not native
    task = task or cfg.task
    path = Path(dataset) if dataset is not None else resolve_dataset_path(task) if task else Path(cfg.dataset)
    ds = open_dataset(path)
    k = k or default_k(cfg.task, cfg.k, task)
    evaluator = Evaluator(ds, EvalConfig(split=split, batch_size=batch_size, limit=limit, device=device))
    frames = evaluator.steps + 1
    simulate = frames >= evaluator.config.sim_observe + SIM_STEPS + 1
    arrays = ("features", "actions") if cfg.use_actions else ("features",)
    loader = SequenceLoader(ds, split, arrays=arrays, batch_size=batch_size, shuffle=False, drop_last=False,
                            limit=evaluator.n)
    runner = Inference(model, k, cfg.noise, bf16, cuda_graph=cuda_graph)
    start = 0
    for batch in loader:
        feats = batch["features"]
        actions = batch.get("actions")
        if actions is not None:
            actions = actions.long()
        out = runner.predict(feats, actions, cfg.seed)
        preds = {"psi": out["psi"], "gamma": out["gamma"]}
        if simulate:
            sim = runner.rollout(feats, evaluator.config.sim_observe, SIM_STEPS, actions, cfg.seed)
            if not torch.isfinite(sim).all():
                raise RnemBenchError("the model's rollout produced NaN or Inf")
            preds["simulation"] = sim.clamp(0, 1)
        evaluator.update(start, preds)
        start += feats.shape[0]
    metrics = evaluator.result()
    summary = read_summary(Path(rundir)) or {}
    n_params = sum(p.numel() for p in model.parameters())
    training = {"task": cfg.task, "preset": cfg.preset, "k": cfg.k, "batch_size": cfg.batch_size,
                "epochs": summary.get("epochs"), "updates": summary.get("updates", _updates(cfg, summary)),
                "wall_time_s": summary.get("wall_seconds"),
                "shortened": not bool(summary.get("finished", False)) or cfg.preset != "paper", "init": cfg.init}
    return make_result(
        metrics, task=task, ds=ds, split=split, model=cfg.model,
        k=model.resolve_k(k), seeds=[cfg.seed], wall_time_s=time.perf_counter() - t0, parameters=n_params,
        training=training,
    )


def _updates(cfg, summary: dict[str, Any]) -> int | None:
    """Optimiser steps of a run whose summary predates their count: whole epochs of full batches
    (the harness drops the last partial batch) on one process."""
    from rnem_bench.data.store import open_dataset

    epochs = summary.get("epochs")
    if epochs is None or cfg.world_size != 1:
        return None
    try:
        n = open_dataset(cfg.dataset).counts["train"]
    except (RnemBenchError, KeyError):
        return None
    return int(epochs) * (min(n, cfg.train_limit or n) // cfg.batch_size)
