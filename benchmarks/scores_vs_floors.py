"""The shipped R-NEM against every floor on the mini tier: which scores a trivial predictor wins.

    OMP_NUM_THREADS=1 python benchmarks/scores_vs_floors.py [--limit N] [--out FILE] [--pins]
    OMP_NUM_THREADS=1 python benchmarks/scores_vs_floors.py --tasks balls4 balls678 curtain \
        --out benchmarks/results/scores_vs_floors_paper.txt --pins      # the paper tier's floors (no model)

For each mini task (canonical datasets under ``rnem_bench.paths.data_dir()``), on the test split:
- the shipped model (``rnem_bench/pretrained``, R-NEM K=5 trained on mini-balls4) scored by
  ``evaluate_run`` exactly as `rnem-bench evaluate` does: on mini-balls4 at K=5 and on
  mini-balls678 at its evaluation K=8; mini-curtain has no shipped model (floors only);
- the floors of ``rnem_bench.evaluation.floors`` (copy, soft-copy, blur-copy, mean-image; fixed
  grids 2x2, 3x3, 4x4 as pinned, and 5x5, 6x6, 8x8 measured here only, on the tasks with a
  shipped model, since the mean best overlap favours cells the size of a ball);
- the mean best overlap (``rnem_bench.metrics.mean_best_overlap``) over the late frames, measured
  here in both variants for the model and the grids: segments that keep their background pixels
  (the definition of issue 19) and foreground-only segments.

Writes a text table (default benchmarks/results/scores_vs_floors_mini.txt) with, per task, every
score of the model and of each floor, and the model's margin over the best grid on each grouping
score (negative: a grid wins). ``--pins`` also prints the FLOORS / GRID_SCORES / SOFT_C literals
of ``leaderboard.board``. Single-threaded torch (the CPU is shared).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

import rnem_bench.evaluation.floors as floors_mod
import rnem_bench.evaluation.run as run_mod
from rnem_bench.evaluation.evaluator import EvalConfig, Evaluator
from rnem_bench.protocol import SIM_OBSERVE
from rnem_bench.evaluation.results import cpu_model
from rnem_bench.evaluation.floors import NEXT_KEYS, PREDICTORS, SIM_KEYS, fit_dataset_of, summarise
from rnem_bench.metrics import mean_best_overlap
from rnem_bench.paths import task_dataset_path

TASKS = ("mini-balls4", "mini-balls678", "mini-curtain")
MODEL = "mini-balls4-rnem-k5"
MODEL_ON = {"mini-balls4": 5, "mini-balls678": 8}  # task -> K at test time (the task's k_eval)
PINNED_GRIDS = (2, 3, 4)
EXTRA_GRIDS = (5, 6, 8)


class VariantEvaluator(Evaluator):
    """The Evaluator, also summing both MBO variants over the late frames (mean over the late
    frames that hold an object, of all sequences, of the per-frame mean over objects); kept out of
    ``result()`` so result files stay schema-valid."""

    created: list["VariantEvaluator"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        VariantEvaluator.created.append(self)

    def reset(self) -> None:
        super().reset()
        self.mbo_sums = {"mbo_background": [0.0, 0], "mbo_foreground": [0.0, 0]}  # [sum, frames]

    def _update_grouping(self, labels: torch.Tensor, groups: torch.Tensor) -> None:
        super()._update_grouping(labels, groups)
        if self.late_from is None:
            return
        for name, foreground_only in (("mbo_background", False), ("mbo_foreground", True)):
            mbo = mean_best_overlap(labels[:, self.late_from:], groups[:, self.late_from:], foreground_only)
            found = ~mbo.isnan()
            self.mbo_sums[name][0] += float(mbo[found].sum())
            self.mbo_sums[name][1] += int(found.sum())

    def mbo(self, name: str) -> float | None:
        total, frames = self.mbo_sums[name]
        return total / frames if frames else None


GROUPING = ("ari_mean", "ari_last", "ari_video", "ari_late", "mbo_background", "mbo_foreground")


def scored(result: dict[str, Any], ev: VariantEvaluator | None, frames: bool = True) -> dict[str, Any]:
    """The scalars of one Evaluator result, both MBO variants (where grouped) and the per-step
    simulation lists; ``frames=False`` (the grids, whose psi means nothing) keeps the grouping only."""
    row = summarise(result, GROUPING[:4])
    for name in GROUPING[4:]:
        row[name] = ev.mbo(name) if ev is not None and result.get("ari_mean") is not None else None
    if frames:
        row.update(summarise(result, ("bce_last", "relative_bce_last") + NEXT_KEYS[1:] + SIM_KEYS))
        row["simulation_bce"] = result.get("simulation_bce")
        row["simulation_iou"] = result.get("simulation_iou")
    return row


def score_task(task: str, limit: int | None, batch_size: int) -> dict[str, Any]:
    """Model (where shipped for the task), floors and grids of one task: {column: row}, and timings."""
    from rnem_bench.data.store import open_dataset
    from rnem_bench.pretrained import pretrained_dir

    ds = open_dataset(task_dataset_path(task))
    config = EvalConfig(batch_size=batch_size, limit=limit)
    columns: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    if task in MODEL_ON:
        t0 = time.perf_counter()
        result = run_mod.evaluate_run(pretrained_dir(MODEL), task=task, k=MODEL_ON[task], limit=limit)
        seconds["model"] = time.perf_counter() - t0
        columns[f"R-NEM K={MODEL_ON[task]}"] = scored(result["metrics"], VariantEvaluator.created[-1])
    t0 = time.perf_counter()
    next_step = floors_mod.next_step_floors(ds, fit_dataset_of(task), config)
    seconds["floors"] = time.perf_counter() - t0
    for name in PREDICTORS:
        columns[name] = scored(next_step[name], None)
    t0 = time.perf_counter()
    # the extra grids are there to hold the model's MBO against; without a model they only cost time
    for grids in (PINNED_GRIDS, EXTRA_GRIDS) if task in MODEL_ON else (PINNED_GRIDS,):
        start = len(VariantEvaluator.created)
        results = floors_mod.grid_floors(ds, config, grids=grids)
        for (name, result), ev in zip(results.items(), VariantEvaluator.created[start:]):
            columns[name] = scored(result, ev, frames=False)
    seconds["grids"] = time.perf_counter() - t0
    return {"columns": columns, "seconds": seconds, "soft_c": next_step["soft-copy"]["soft_c"],
            "blur_sigma": next_step["blur-copy"]["blur_sigma"], "n": next_step["copy"]["n_sequences"],
            "steps": next_step["copy"]["steps"]}


ROWS = [  # (key, label, format)
    ("ari_mean", "ARI mean over steps 0..T-1", "{:.4f}"),
    ("ari_last", "ARI last step", "{:.4f}"),
    ("ari_video", "video ARI, late steps as one clustering", "{:.4f}"),
    ("ari_late", "ARI per frame, mean over late steps", "{:.4f}"),
    ("mbo_background", "MBO (segments keep background), late", "{:.4f}"),
    ("mbo_foreground", "MBO variant: foreground-only segments", "{:.4f}"),
    ("bce_last", "BCE last step", "{:.1f}"),
    ("relative_bce_last", "BCE / copy, last step", "{:.4f}"),
    ("bce_last10", "BCE mean of the last 10 steps", "{:.1f}"),
    ("iou_last", "foreground IoU last step", "{:.4f}"),
    ("iou_last10", "foreground IoU mean of last 10 steps", "{:.4f}"),
    ("simulation_bce_mean", "simulation BCE mean of 10 steps", "{:.1f}"),
    ("simulation_iou_mean", "simulation IoU mean of 10 steps", "{:.4f}"),
]
def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def table(task: str, scores: dict[str, Any]) -> list[str]:
    cols = scores["columns"]
    names = list(cols)
    width = max(9, *(len(n) + 1 for n in names))
    lines = [f"## {task}  ({scores['n']} test sequences; soft-copy c = {scores['soft_c']['next']:.6f} next step, "
             f"{scores['soft_c']['simulation']:.6f} simulation, fitted on the valid split of "
             f"{fit_dataset_of(task).path.stem}; blur sigma {scores['blur_sigma']} px; late steps {SIM_OBSERVE}..{scores['steps'] - 1})",
             f"{'score':<42}" + "".join(f"{n:>{width}}" for n in names)]
    for key, label, spec in ROWS:
        values = [cols[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        lines.append(f"{label:<42}" + "".join(f"{fmt(v, spec):>{width}}" for v in values))
    for key, label, spec in (("simulation_bce", "simulation BCE per step", "{:.0f}"),
                             ("simulation_iou", "simulation IoU per step", "{:.3f}")):
        lines.append(label + ":")
        for n in names:
            if cols[n].get(key) is not None:
                lines.append(f"  {n:<14}" + " ".join(fmt(v, spec) for v in cols[n][key]))
    model = next((n for n in names if n.startswith("R-NEM")), None)
    grids = [n for n in names if "x" in n and n[0].isdigit()]
    if model:
        lines.append(f"margin of {model} over the best grid (model - best grid; negative: a grid wins):")
        for key in GROUPING:
            pinned = [g for g in grids if int(g[0]) in PINNED_GRIDS]
            for label, among in (("2x2..4x4", pinned), ("2x2..8x8", grids)):
                best = max(among, key=lambda g: cols[g][key])
                margin = cols[model][key] - cols[best][key]
                lines.append(f"  {key:<15} among {label}: {margin:+.4f} (model {cols[model][key]:.4f}, "
                             f"best grid {best} {cols[best][key]:.4f})")
        best_floor = min(PREDICTORS, key=lambda p: cols[p]["bce_last"])
        lines.append(f"  bce_last: model {cols[model]['bce_last']:.1f} vs best floor {best_floor} "
                     f"{cols[best_floor]['bce_last']:.1f} ({cols[model]['bce_last'] / cols[best_floor]['bce_last']:.3f}x)")
        best_sim = min(PREDICTORS, key=lambda p: cols[p]["simulation_bce_mean"])
        lines.append(f"  simulation BCE mean: model {cols[model]['simulation_bce_mean']:.1f} vs best floor {best_sim} "
                     f"{cols[best_sim]['simulation_bce_mean']:.1f}")
    lines.append("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in scores["seconds"].items()))
    return lines


def pins(all_scores: dict[str, Any]) -> str:
    """The FLOORS / GRID_SCORES / SOFT_C literals of leaderboard.board."""
    def r(key: str, value: float) -> float:
        return round(value, 3 if "bce" in key else 6)

    floors = {t: {p: {k: r(k, s["columns"][p][k]) for k in NEXT_KEYS + SIM_KEYS} for p in PREDICTORS}
              for t, s in all_scores.items()}
    grids = {t: {f"{g}x{g}": {k: r(k, s["columns"][f"{g}x{g}"][k]) for k in ("ari_video", "ari_late")} for g in PINNED_GRIDS}
             for t, s in all_scores.items()}
    soft = {t: {k: round(v, 8) for k, v in s["soft_c"].items()} for t, s in all_scores.items()}
    return f"FLOORS = {floors!r}\nGRID_SCORES = {grids!r}\nSOFT_C = {soft!r}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="score the first N test sequences only")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--out", default="benchmarks/results/scores_vs_floors_mini.txt")
    parser.add_argument("--pins", action="store_true", help="print the board.py literals too")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_mod.Evaluator = floors_mod.Evaluator = VariantEvaluator  # same scoring, plus the MBO variant
    t0 = time.perf_counter()
    all_scores = {task: score_task(task, args.limit, args.batch_size) for task in args.tasks}
    cpu = cpu_model() or platform.processor()
    with_model = any(t in MODEL_ON for t in args.tasks)
    header = [
        f"# Scores of {'the shipped R-NEM vs ' if with_model else ''}trivial predictors (floors), "
        f"{', '.join(args.tasks)}, test splits",
        f"# produced by: OMP_NUM_THREADS=1 python benchmarks/scores_vs_floors.py{' '.join([''] + sys.argv[1:])}",
        f"# CPU: {cpu}, {torch.get_num_threads()} torch thread(s); "
        f"{time.perf_counter() - t0:.0f} s in all; torch {torch.__version__}",
        *(["# model: rnem_bench/pretrained/mini-balls4-rnem-k5 scored by evaluate_run (as `rnem-bench evaluate`);"]
          if with_model else []),
        "# floors: rnem_bench/evaluation/floors.py through the Evaluator. Late steps = sim_observe (10) .. T-1;",
        "# a step t's gamma is scored against frame t + 1. Simulation: 10 frames observed, frames 11..20 predicted;",
        "# the copy predictors simulate by freezing the last observed frame (the mean image predicts itself).",
        "# MBO (both variants) is measured here only: the Evaluator does not report it, fixed grids beat the model on it.",
        "",
    ]
    lines = header + [line for task, s in all_scores.items() for line in table(task, s) + [""]]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    if args.pins:
        print(pins(all_scores))


if __name__ == "__main__":
    main()
