"""Leaderboard rules: which result files are accepted, where entries live, how they are ranked.

One JSON result file per entry in ``leaderboards/<task>/``. An entry is accepted only if it
passes the result schema, names a known task, was computed on that task's canonical dataset
(same fingerprint, the whole test split), holds finite metrics in range, and is not already on
the board (same model, K and seeds, or the same content).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from rnem_bench.errors import RnemBenchError
from rnem_bench.protocol import SIM_OBSERVE, SIM_STEPS  # the board compares these simulations
from rnem_bench.evaluation.results import read_result

RANK_METRIC = "relative_bce_last"  # paper figure 3: BCE at the last step relative to copying the frame


def board_dir(path: str | Path | None = None) -> Path:
    """``--board`` if given, else ``$RNEM_BENCH_LEADERBOARDS``, else ``./leaderboards``."""
    return Path(path or os.environ.get("RNEM_BENCH_LEADERBOARDS", "leaderboards"))


def _content_hash(result: dict[str, Any]) -> str:
    keep = {k: result[k] for k in ("task", "dataset", "model", "seeds", "metrics")}
    keep["dataset"] = {k: v for k, v in keep["dataset"].items() if k != "path"}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:10]


def entry_identity(result: dict[str, Any]) -> tuple[str, int, int | None, tuple[int, ...], str | None]:
    """What makes two entries the same: model, K at test time, K in training (an R-NEM trained
    with K=5 and one trained with K=8 both score balls678 at K=8), seeds, and for our reference
    models the initialisation they were trained from (``training_init``)."""
    model = result["model"]
    return model["name"], model["k"], result.get("training", {}).get("k"), tuple(result["seeds"]), training_init(result)


def training_init(result: dict[str, Any]) -> str | None:
    """How a reference model's parameters started: "original" (the original code's glorot/zeros,
    the default since it was added) or "pytorch" (every entry trained before: their result files
    do not say). None for outside models (``model.source`` not rnem-bench)."""
    if result["model"].get("source") != "rnem-bench":
        return None
    return (result.get("training") or {}).get("init", "pytorch")


def entry_name(result: dict[str, Any]) -> str:
    name, k, trained_k, seeds, _init = entry_identity(result)
    trained = "" if trained_k in (None, k) else f"-trainedk{trained_k}"
    return f"{name}-k{k}{trained}-seed{'-'.join(map(str, seeds))}-{_content_hash(result)}.json"


def check_entry(result: dict[str, Any], board: Path) -> None:
    """Raise a one-line RnemBenchError naming the first rule the result breaks."""
    from rnem_bench.tasks import TASKS

    task_name = result["task"]
    if task_name not in TASKS:
        raise RnemBenchError(f"field 'task': unknown task '{task_name}' (known: {', '.join(TASKS)})")
    task = TASKS[task_name]
    canonical = task.recipe()
    fp = result["dataset"]["fingerprint"]
    if fp != canonical.fingerprint():
        raise RnemBenchError(
            f"field 'dataset.fingerprint': {fp} is not the canonical {task_name} dataset ({canonical.fingerprint()}); "
            "evaluate on the dataset from `rnem-bench generate --task " + task_name + "`"
        )
    if result["dataset"]["split"] != "test":
        raise RnemBenchError("field 'dataset.split': leaderboard entries are scored on the test split")
    expected_n = canonical.splits["test"]
    if result["metrics"]["n_sequences"] != expected_n:
        raise RnemBenchError(f"field 'metrics.n_sequences': {result['metrics']['n_sequences']} sequences scored, "
                             f"the {task_name} test split has {expected_n}")
    if result["metrics"].get(RANK_METRIC) is None:
        raise RnemBenchError(f"field 'metrics.{RANK_METRIC}': missing (needed for the ranking)")
    _check_consistency(result["metrics"], canonical.params["steps"])
    for key, pinned in COPY_BASELINES.get(task_name, {}).items():
        value = result["metrics"].get(f"baseline_{key}")
        if value is None or abs(value - pinned) > 1e-6 * pinned:
            raise RnemBenchError(f"field 'metrics.baseline_{key}': {value}, the canonical {task_name} test split gives "
                                 f"{pinned}; score on the dataset of `rnem-bench generate --task {task_name}`")
    for other in entries(board, task_name):
        if _content_hash(other) == _content_hash(result):
            raise RnemBenchError("duplicate: this exact result is already on the board")
        if entry_identity(other) == entry_identity(result):
            model, trained_k = result["model"], entry_identity(result)[2]
            raise RnemBenchError(f"duplicate: {model['name']} K={model['k']}"
                                 f"{'' if trained_k is None else f' (trained with K={trained_k})'} seeds "
                                 f"{result['seeds']} already has an entry on {task_name}")


# The copy-current-frame baselines of each task's canonical test split, as the evaluator scores
# them (``evaluation.evaluator.copy_baselines``; pinned like the fingerprints; the tests recompute
# balls4's and the mini tier's). A result whose baselines differ was not scored on the canonical
# data, whatever fingerprint it names.
COPY_BASELINES: dict[str, dict[str, float]] = {
    "balls4": {"bce_last": 3145.042953, "bce_last10": 3138.954458, "relational_bce_last": 175.371328, "relational_bce_last10": 177.128661},
    "balls678": {"bce_last": 5208.256826, "bce_last10": 5197.327652, "relational_bce_last": 810.70383, "relational_bce_last10": 796.834025},
    "curtain": {"bce_last": 1512.422624, "bce_last10": 1514.606166, "relational_bce_last": 30.812733, "relational_bce_last10": 31.160608},
    "invaders": {"bce_last": 583.467694, "bce_last10": 588.884065},  # recorded by the shipped DQN, epsilon 0.05
    "mini-balls4": {"bce_last": 780.797395, "bce_last10": 773.548396, "relational_bce_last": 43.325441, "relational_bce_last10": 44.601994},
    "mini-balls678": {"bce_last": 1299.480015, "bce_last10": 1291.979575, "relational_bce_last": 201.713362, "relational_bce_last10": 201.380408},
    "mini-curtain": {"bce_last": 381.494601, "bce_last10": 383.274039, "relational_bce_last": 8.503447, "relational_bce_last10": 7.692476},
}

# The ARI of fixed n x n grids on each task's canonical test split (``evaluation.evaluator.
# grid_ari_baselines``; the tests recompute the mini tier's, the paper tier's were computed once
# on test splits whose copy baselines equal COPY_BASELINES): a partition that knows nothing of
# objects. A model's ARI says something about object discovery only above these. (Invaders has no
# object groups, so no ARI.)
GRID_ARI: dict[str, dict[str, float]] = {
    "balls4": {"2x2": 0.658763, "3x3": 0.663535, "4x4": 0.515416},
    "balls678": {"2x2": 0.483422, "3x3": 0.739169, "4x4": 0.525246},
    "curtain": {"2x2": 0.694806, "3x3": 0.692685, "4x4": 0.573533},
    "mini-balls4": {"2x2": 0.665654, "3x3": 0.646535, "4x4": 0.512242},
    "mini-balls678": {"2x2": 0.482947, "3x3": 0.724019, "4x4": 0.521223},
    "mini-curtain": {"2x2": 0.701477, "3x3": 0.680428, "4x4": 0.570669},
}

# What trivial predictors score on each task's canonical test split, through the Evaluator
# (``evaluation.floors``; tests/test_floors.py recomputes the mini tier's; the paper tier's, 10,000
# 64x64 test sequences each, take about 20 minutes of one core per task and were computed once by
# benchmarks/scores_vs_floors.py, benchmarks/results/scores_vs_floors_paper.txt). Next step: ``copy``
# (frame t), ``soft-copy`` (c + (1 - 2c) * frame t, c in SOFT_C), ``blur-copy`` (Gaussian, sigma
# 3 px at 64x64, 1.5 px at 32x32), ``mean-image`` (the train split's mean frame); in simulation (10
# observed, 10 predicted) the copies freeze the last observed frame. ``simulation_*_mean`` averages
# the 10 simulated steps. BCE rounded to 1e-3, IoU to 1e-6. A hedged copy beats the plain one on
# BCE (soft-copy and blur-copy score a quarter of it), and the mean image beats a frozen frame in
# simulation: BCE alone does not show that a model predicts anything; IoU does not reward hedging.
FLOORS: dict[str, dict[str, dict[str, float]]] = {
    "balls4": {
        "copy": {"bce_last": 3145.043, "bce_last10": 3138.955, "iou_last": 0.785217, "iou_last10": 0.785585,
            "simulation_bce_mean": 12521.21, "simulation_bce_last": 16499.267, "simulation_iou_mean": 0.367715, "simulation_iou_last": 0.231115},
        "soft-copy": {"bce_last": 879.139, "bce_last10": 877.881, "iou_last": 0.785217, "iou_last10": 0.785585,
            "simulation_bce_mean": 2164.777, "simulation_bce_last": 2525.944, "simulation_iou_mean": 0.367715, "simulation_iou_last": 0.231115},
        "blur-copy": {"bce_last": 697.419, "bce_last10": 696.202, "iou_last": 0.760527, "iou_last10": 0.761017,
            "simulation_bce_mean": 2584.956, "simulation_bce_last": 4040.926, "simulation_iou_mean": 0.357267, "simulation_iou_last": 0.223133},
        "mean-image": {"bce_last": 1953.049, "bce_last10": 1951.911, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 1952.615, "simulation_bce_last": 1949.975, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
    "balls678": {
        "copy": {"bce_last": 5208.257, "bce_last10": 5197.328, "iou_last": 0.79513, "iou_last10": 0.795542,
            "simulation_bce_mean": 16003.302, "simulation_bce_last": 19617.082, "simulation_iou_mean": 0.484969, "simulation_iou_last": 0.398074},
        "soft-copy": {"bce_last": 1305.391, "bce_last10": 1303.133, "iou_last": 0.79513, "iou_last10": 0.795542,
            "simulation_bce_mean": 2480.916, "simulation_bce_last": 2809.011, "simulation_iou_mean": 0.484969, "simulation_iou_last": 0.398074},
        "blur-copy": {"bce_last": 1156.57, "bce_last10": 1155.47, "iou_last": 0.767384, "iou_last10": 0.767734,
            "simulation_bce_mean": 2655.72, "simulation_bce_last": 3460.61, "simulation_iou_mean": 0.478517, "simulation_iou_last": 0.394984},
        "mean-image": {"bce_last": 2781.602, "bce_last10": 2781.954, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 2774.942, "simulation_bce_last": 2778.675, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
    "curtain": {
        "copy": {"bce_last": 1512.423, "bce_last10": 1514.606, "iou_last": 0.775747, "iou_last10": 0.775086,
            "simulation_bce_mean": 6995.222, "simulation_bce_last": 9301.982, "simulation_iou_mean": 0.285769, "simulation_iou_last": 0.133014},
        "soft-copy": {"bce_last": 504.52, "bce_last10": 505.087, "iou_last": 0.775747, "iou_last10": 0.775086,
            "simulation_bce_mean": 1532.194, "simulation_bce_last": 1860.361, "simulation_iou_mean": 0.285769, "simulation_iou_last": 0.133014},
        "blur-copy": {"bce_last": 388.753, "bce_last10": 388.112, "iou_last": 0.707419, "iou_last10": 0.707578,
            "simulation_bce_mean": 1644.064, "simulation_bce_last": 2794.57, "simulation_iou_mean": 0.261219, "simulation_iou_last": 0.118904},
        "mean-image": {"bce_last": 1288.983, "bce_last10": 1287.79, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 1289.807, "simulation_bce_last": 1288.756, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
    "mini-balls4": {
        "copy": {"bce_last": 780.797, "bce_last10": 773.548, "iou_last": 0.786869, "iou_last10": 0.788666,
            "simulation_bce_mean": 3129.213, "simulation_bce_last": 4136.157, "simulation_iou_mean": 0.36854, "simulation_iou_last": 0.230437},
        "soft-copy": {"bce_last": 218.662, "bce_last10": 217.161, "iou_last": 0.786869, "iou_last10": 0.788666,
            "simulation_bce_mean": 541.096, "simulation_bce_last": 632.454, "simulation_iou_mean": 0.36854, "simulation_iou_last": 0.230437},
        "blur-copy": {"bce_last": 174.458, "bce_last10": 173.368, "iou_last": 0.762505, "iou_last10": 0.764674,
            "simulation_bce_mean": 629.758, "simulation_bce_last": 977.784, "simulation_iou_mean": 0.359277, "simulation_iou_last": 0.223684},
        "mean-image": {"bce_last": 488.639, "bce_last10": 488.625, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 488.625, "simulation_bce_last": 488.639, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
    "mini-balls678": {
        "copy": {"bce_last": 1299.48, "bce_last10": 1291.98, "iou_last": 0.796019, "iou_last10": 0.79709,
            "simulation_bce_mean": 3992.98, "simulation_bce_last": 4889.082, "simulation_iou_mean": 0.486522, "simulation_iou_last": 0.400292},
        "soft-copy": {"bce_last": 326.055, "bce_last10": 324.502, "iou_last": 0.796019, "iou_last10": 0.79709,
            "simulation_bce_mean": 619.464, "simulation_bce_last": 700.766, "simulation_iou_mean": 0.486522, "simulation_iou_last": 0.400292},
        "blur-copy": {"bce_last": 290.251, "bce_last10": 289.292, "iou_last": 0.769611, "iou_last10": 0.770424,
            "simulation_bce_mean": 658.206, "simulation_bce_last": 850.742, "simulation_iou_mean": 0.481275, "simulation_iou_last": 0.398893},
        "mean-image": {"bce_last": 698.162, "bce_last10": 697.301, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 697.301, "simulation_bce_last": 698.162, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
    "mini-curtain": {
        "copy": {"bce_last": 381.495, "bce_last10": 383.274, "iou_last": 0.773237, "iou_last10": 0.77298,
            "simulation_bce_mean": 1756.959, "simulation_bce_last": 2330.359, "simulation_iou_mean": 0.282421, "simulation_iou_last": 0.130249},
        "soft-copy": {"bce_last": 127.01, "bce_last10": 127.472, "iou_last": 0.773237, "iou_last10": 0.77298,
            "simulation_bce_mean": 384.222, "simulation_bce_last": 466.114, "simulation_iou_mean": 0.282421, "simulation_iou_last": 0.130249},
        "blur-copy": {"bce_last": 97.474, "bce_last10": 97.505, "iou_last": 0.70637, "iou_last10": 0.705431,
            "simulation_bce_mean": 404.286, "simulation_bce_last": 679.418, "simulation_iou_mean": 0.258057, "simulation_iou_last": 0.116449},
        "mean-image": {"bce_last": 321.159, "bce_last10": 321.879, "iou_last": 0.0, "iou_last10": 0.0,
            "simulation_bce_mean": 321.879, "simulation_bce_last": 321.159, "simulation_iou_mean": 0.0, "simulation_iou_last": 0.0},
    },
}

# The soft-copy constants of FLOORS: the fraction of pixels where the copy (next step) or the frozen
# last observed frame (simulation) is wrong on the valid split, which minimises the softened copy's
# BCE there; a test-only task uses its train task's valid split (mini-balls678: mini-balls4's).
SOFT_C: dict[str, dict[str, float]] = {
    "balls4": {"next": 0.05446302, "simulation": 0.22195501},
    "balls678": {"next": 0.05446302, "simulation": 0.22195501},
    "curtain": {"next": 0.0269139, "simulation": 0.12287954},
    "mini-balls4": {"next": 0.05414062, "simulation": 0.22210215},
    "mini-balls678": {"next": 0.05414062, "simulation": 0.22210215},
    "mini-curtain": {"next": 0.02691934, "simulation": 0.12205439},
}

# The fixed grids of GRID_ARI on the late-step grouping scores (steps 10..T-1: 10..19 on the mini
# tasks, 10..29 on the paper's): ``ari_video`` (each sequence's late frames as one clustering) and
# ``ari_late`` (per-frame ARI over the late steps); ``evaluation.floors.grid_floors``, the mini
# tier's recomputed by tests/test_floors.py, the paper tier's computed once (as FLOORS).
GRID_SCORES: dict[str, dict[str, dict[str, float]]] = {
    "balls4": {
        "2x2": {"ari_video": 0.58629, "ari_late": 0.652115},
        "3x3": {"ari_video": 0.525746, "ari_late": 0.665749},
        "4x4": {"ari_video": 0.369444, "ari_late": 0.515473},
    },
    "balls678": {
        "2x2": {"ari_video": 0.451213, "ari_late": 0.480372},
        "3x3": {"ari_video": 0.673182, "ari_late": 0.743459},
        "4x4": {"ari_video": 0.426108, "ari_late": 0.524523},
    },
    "curtain": {
        "2x2": {"ari_video": 0.601962, "ari_late": 0.693903},
        "3x3": {"ari_video": 0.520408, "ari_late": 0.693578},
        "4x4": {"ari_video": 0.37724, "ari_late": 0.574283},
    },
    "mini-balls4": {
        "2x2": {"ari_video": 0.630873, "ari_late": 0.65362},
        "3x3": {"ari_video": 0.5962, "ari_late": 0.648614},
        "4x4": {"ari_video": 0.448445, "ari_late": 0.513444},
    },
    "mini-balls678": {
        "2x2": {"ari_video": 0.468678, "ari_late": 0.479527},
        "3x3": {"ari_video": 0.698595, "ari_late": 0.726728},
        "4x4": {"ari_video": 0.475069, "ari_late": 0.521319},
    },
    "mini-curtain": {
        "2x2": {"ari_video": 0.664549, "ari_late": 0.695931},
        "3x3": {"ari_video": 0.618942, "ari_late": 0.682143},
        "4x4": {"ari_video": 0.487529, "ari_late": 0.571821},
    },
}


def grid_scores(task: str, metric: str = "ari_mean") -> dict[str, float]:
    """The pinned fixed grids' score ``metric`` (ari_mean: ``GRID_ARI``; ari_video, ari_late:
    ``GRID_SCORES``) on ``task``, by grid; {} where none is pinned."""
    if metric == "ari_mean":
        return dict(GRID_ARI.get(task, {}))
    return {name: scores[metric] for name, scores in GRID_SCORES.get(task, {}).items() if metric in scores}


def best_grid(task: str, metric: str = "ari_mean") -> tuple[str, float] | None:
    """The pinned grid with the highest ``metric`` on ``task`` ("3x3", 0.664), or None where none is pinned."""
    grids = grid_scores(task, metric)
    return max(grids.items(), key=lambda item: item[1]) if grids else None


# The reference rows of a board: what each pinned trivial predictor scores, keyed like a result's
# metrics so the board's columns read them alike (a per-step metric by its mean over steps).
_FLOOR_KEYS = {"bce_last": "bce_last", "iou_last": "iou_last", "simulation_bce": "simulation_bce_mean",
               "simulation_iou": "simulation_iou_mean"}
FLOOR_LABELS = {"copy": "copy", "soft-copy": "soft copy", "blur-copy": "blur copy", "mean-image": "mean image"}


def reference_rows(task: str) -> list[tuple[str, dict[str, float]]]:
    """(label, metrics) of every pinned trivial predictor on ``task``: the next-step and simulation
    floors (copies frozen at the last observed frame in simulation), then the fixed grids' ARI."""
    rows = []
    copy = COPY_BASELINES.get(task, {}).get("bce_last")
    for name, pinned in FLOORS.get(task, {}).items():
        metrics = {key: pinned[floor_key] for key, floor_key in _FLOOR_KEYS.items() if floor_key in pinned}
        if copy:
            metrics[RANK_METRIC] = pinned["bce_last"] / copy
        rows.append((FLOOR_LABELS.get(name, name), metrics))
    for grid in GRID_ARI.get(task, {}):
        metrics = {"ari_mean": GRID_ARI[task][grid], **GRID_SCORES.get(task, {}).get(grid, {})}
        rows.append((f"{grid} grid", metrics))
    return rows


def simulation_floors(task: str) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
    """(label, value) of the trivial predictor with the lowest simulation BCE (mean of the simulated
    steps) and of the frozen last observed frame's simulation IoU on ``task``; None where not pinned."""
    floors = dict(reference_rows(task))
    bce = min(((label, m["simulation_bce"]) for label, m in floors.items() if "simulation_bce" in m),
              key=lambda item: item[1], default=None)
    copy = floors.get(FLOOR_LABELS["copy"], {})
    iou = (FLOOR_LABELS["copy"], copy["simulation_iou"]) if "simulation_iou" in copy else None
    return bce, iou


def grid_ari_text(task: str) -> str | None:
    """"fixed grids (no objects) score ARI 2x2 0.666, 3x3 0.647, 4x4 0.512" for a pinned task, else None."""
    grids = GRID_ARI.get(task)
    if not grids:
        return None
    return "fixed grids (no objects) score ARI " + ", ".join(f"{name} {value:.3f}" for name, value in grids.items())




def _check_consistency(m: dict[str, Any], steps: int) -> None:
    """Metrics that must agree with each other and with the task (a result is self-reported)."""
    if m["steps"] != steps:
        raise RnemBenchError(f"field 'metrics.steps': {m['steps']}, the task has {steps} steps")
    for key in ("bce_per_step", "baseline_bce_per_step", "ari_per_step"):
        if key in m and len(m[key]) != steps:
            raise RnemBenchError(f"field 'metrics.{key}': {len(m[key])} values, the task has {steps} steps")
    for key, value in m.items():
        if not key.startswith("relative_") or value is None:
            continue
        name = key.removeprefix("relative_")
        loss, base = m.get(name), m.get(f"baseline_{name}")
        if loss is None or not base or abs(value - loss / base) > 1e-6 * max(1.0, abs(value)):
            raise RnemBenchError(f"field 'metrics.{key}': {value} is not {name} / baseline ({loss} / {base})")
    if m.get("simulation_bce") is not None:
        if m.get("sim_observe") != SIM_OBSERVE or len(m["simulation_bce"]) != SIM_STEPS:
            raise RnemBenchError(f"field 'metrics.simulation_bce': the board compares simulations of {SIM_STEPS} steps "
                                 f"after {SIM_OBSERVE} observed frames, got {len(m['simulation_bce'])} after {m.get('sim_observe')}")
        if len(m.get("baseline_simulation_bce") or []) != SIM_STEPS:
            raise RnemBenchError(f"field 'metrics.baseline_simulation_bce': needs {SIM_STEPS} values")


def entries(board: Path, task: str) -> list[dict[str, Any]]:
    """The task's entries, best first."""
    folder = board / task
    found = [read_result(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda r: (r["metrics"][RANK_METRIC], r["model"]["name"]))


def submit(result_path: str | Path, board: Path) -> Path:
    """Validate a result file and add it as an entry; nothing is written unless it is accepted."""
    result = read_result(result_path)
    check_entry(result, board)
    name = entry_name(result)
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+\.json", name):
        raise RnemBenchError(f"field 'model.name': cannot form a safe file name from it ({name!r})")
    target = board / result["task"] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(result_path, tmp)
    os.replace(tmp, target)
    return target
