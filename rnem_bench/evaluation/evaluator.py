"""One evaluator for every model: ``Evaluator(task).eval(predictions) -> dict`` (the OGB pattern).

Predictions are plain arrays (numpy, torch or lazy Zarr) covering the test split in order, with
step t predicting frame t + 1:

- mixture models: ``psi`` and ``gamma``, each (N, T, K, H, W) in [0, 1];
- single-frame models (K = 1, or any outside model): ``prediction`` (N, T, H, W) in [0, 1];
- models that compose their own frame from components with their own masks (slot models such as
  SAVi): ``prediction`` (N, T, H, W) together with ``gamma`` (N, T, K, H, W), the masks, which must
  sum to 1 over K (within ``GAMMA_SUM_TOL``); scored on their own prediction, grouped by argmax gamma;
- optionally ``simulation`` (N, S, H, W): predictions of frames ``sim_observe + 1 ..
  sim_observe + S`` made from the real frames ``0 .. sim_observe - 1`` only, the model feeding
  on its own output (default ``sim_observe`` = 10, S = 10).

Scores (rnem_bench/metrics.py defines each): BCE and relational BCE of the frame prediction
(max_k psi_k for mixtures) and their copy-current-frame baselines; foreground IoU of the same frame
(``iou_*``); for models with ``gamma`` and K > 1, ARI per frame (``ari_mean``, ``ari_last``) and, over the
*late* steps ``sim_observe .. T-1`` (those a simulation predicts), the video ARI (``ari_video``:
each sequence's late frames as one clustering) and the per-frame ARI (``ari_late``); per simulated
step, BCE and foreground IoU of ``simulation``. (The mean best overlap of ``rnem_bench.metrics`` is
not reported: fixed grids beat the trained R-NEM on it, see benchmarks/scores_vs_floors.py.)

T must equal the dataset's steps (frames - 1). The evaluator reads the true frames, groups and
collision masks itself, batch by batch, so a 10,000-sequence test set never has to fit in memory;
``update``/``result`` is the same computation for callers that produce predictions batch by batch.
The metrics are plain torch: ``EvalConfig(device="cuda")`` runs them beside a GPU model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from rnem_bench.data.store import Dataset, open_dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.protocol import LAST_STEPS, SIM_OBSERVE
from rnem_bench.metrics import (
    adjusted_rand_index, assignments, bce, bce_and_masked, copy_frame_bce, foreground_iou,
    GROUPING_COUNTS, GROUPING_RATES, grid_partition, grouping_rates, grouping_scores, mixture_prediction,
)


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    batch_size: int = 64
    last: int = LAST_STEPS          # "mean of the last 10 steps"
    sim_observe: int = SIM_OBSERVE  # real frames seen before a simulation; also the first "late" step
    limit: int | None = None        # score only the first `limit` sequences (tests, quick looks)
    device: str = "cpu"             # where the metrics run: beside a GPU model, its GPU keeps them cheap


MAX_K = 64  # components a prediction may have (the result schema's bound)
GAMMA_SUM_TOL = 1e-2  # a composite prediction's gamma (masks) must sum to 1 over K within this, per pixel


def _as_tensor(x: Any, name: str, device: str = "cpu") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if x.dtype.kind not in "fub":  # float, unsigned int, bool: never strings or objects
            raise RnemBenchError(f"{name} must hold probabilities (float), got dtype {x.dtype}")
        with warnings.catch_warnings():  # read-only arrays (loaded .npz, zarr) are fine: nothing here writes
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            x = torch.from_numpy(x)
    t = x.detach()
    if not (t.dtype.is_floating_point or t.dtype in (torch.uint8, torch.bool)):
        raise RnemBenchError(f"{name} must hold probabilities (float), got dtype {t.dtype}")
    # the metrics run in float32 on contiguous memory (a no-op for the usual float32 CPU arrays)
    t = t.to(device=device, dtype=torch.float32).contiguous()
    if t.numel():
        lo, hi = (v.item() for v in torch.aminmax(t))  # one pass; NaN propagates into both
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise RnemBenchError(f"{name} contains NaN or Inf")
        if lo < 0 or hi > 1:
            raise RnemBenchError(f"{name} has values outside [0, 1] (min {lo:.3g}, max {hi:.3g})")
    return t


class Evaluator:
    """Scores predictions on a task's (or any dataset's) test split."""

    def __init__(self, task_or_dataset: str | Path | Dataset, config: EvalConfig = EvalConfig()):
        from rnem_bench.data.store import resolve_dataset_path
        from rnem_bench.tasks import TASKS

        if isinstance(task_or_dataset, Dataset):
            self.ds = task_or_dataset
        else:
            self.ds = open_dataset(resolve_dataset_path(str(task_or_dataset)))
        self.config = config
        self.task = str(task_or_dataset) if str(task_or_dataset) in TASKS else None
        if config.split not in self.ds.counts:
            raise RnemBenchError(f"{self.ds.path} has no '{config.split}' split")
        n = self.ds.counts[config.split]
        self.n = n if config.limit is None else min(n, config.limit)
        frames = self.ds.array(config.split, "features").shape[1]
        self.steps = frames - 1
        self.size = self.ds.array(config.split, "features").shape[-1]
        self.has_groups = self.ds.has_groups
        self.has_collisions = "collisions" in self.ds.arrays
        self.device = torch.device(config.device)
        self.reset()

    # ------------------------------------------------------------------ streaming interface
    def reset(self) -> None:
        T = self.steps
        self._seen = 0
        self._k: int | None = None
        # per step t, sums over the sequences seen
        self._sums = {name: torch.zeros(T, dtype=torch.float64, device=self.device)
                      for name in ("bce", "base", "rbce", "rbase", "ari", "iou")}
        # over the late steps: the video ARI summed over sequences
        self._late = {"ari_video": torch.zeros((), dtype=torch.float64, device=self.device)}
        # per step t, the grouping diagnostics' counts summed over sequences (metrics.grouping_counts)
        self._grouping = {name: torch.zeros(T, dtype=torch.float64, device=self.device) for name in GROUPING_COUNTS}
        self._sim: dict[str, torch.Tensor] | None = None

    @property
    def late_from(self) -> int | None:
        """The first late step (``sim_observe``), or None when the sequences are too short to have any."""
        return self.config.sim_observe if self.config.sim_observe < self.steps else None

    def update(self, start: int, predictions: Mapping[str, Any]) -> None:
        """Score predictions of sequences ``start : start + B`` (they must arrive in order).
        A batch that is refused leaves the running sums as they were."""
        if start != self._seen:
            raise RnemBenchError(f"predictions must arrive in order: expected sequence {self._seen}, got {start}")
        shapes = self.check_layout(predictions)
        B = next(iter(shapes.values()))[0]
        for name, shape in shapes.items():
            if shape[0] != B:
                raise RnemBenchError(f"{name} holds {shape[0]} sequences in this batch, the others {B}")
        stop = start + B
        if stop > self.n:
            raise RnemBenchError(f"predictions cover {stop} sequences, the {self.config.split} split has {self.n}")
        if ("simulation" in predictions) != (self._sim is not None) and self._seen:
            raise RnemBenchError("'simulation' is given for some batches and missing for others")
        frame, gamma, k = self._frame_predictions(predictions)
        sim = _as_tensor(predictions["simulation"], "simulation", self.device) if "simulation" in predictions else None
        if sim is not None and self._sim is not None and sim.shape[1] != self._sim["model"].shape[0]:
            raise RnemBenchError("simulation length differs between batches")
        # every check has passed: from here on the batch is added to the sums
        truth = self._truth(start, stop)
        target, current = truth["features"][:, 1:], truth["features"][:, :-1]
        s = self._sums
        s["base"] += copy_frame_bce(current, target).sum(0)   # copy-current-frame baseline
        if self.has_collisions:
            mask = truth["collisions"][:, 1:]
            model, relational = bce_and_masked(frame, target, mask)
            s["bce"] += model.sum(0)
            s["rbce"] += relational.sum(0)
            s["rbase"] += copy_frame_bce(current, target, mask).sum(0)
        else:
            s["bce"] += bce(frame, target).sum(0)
        s["iou"] += foreground_iou(frame, target).sum(0)
        if gamma is not None and k > 1 and self.has_groups:
            self._update_grouping(assignments(gamma), truth["groups"][:, 1:])
        if sim is not None:
            self._update_simulation(sim, truth["features"])
        self._k = k
        self._seen = stop

    def result(self) -> dict[str, Any]:
        """The metrics over every sequence seen (must be the whole split, or ``limit``)."""
        if self._seen != self.n:
            raise RnemBenchError(f"predictions cover {self._seen} of {self.n} {self.config.split} sequences")
        n, last = self.n, min(self.config.last, self.steps)
        per = {name: (v.cpu() / n) for name, v in self._sums.items()}
        out: dict[str, Any] = {"n_sequences": n, "steps": self.steps, "k": self._k, "notes": []}

        def summary(prefix: str, model: torch.Tensor, base: torch.Tensor) -> None:
            for suffix, m, b in (("last", model[-1], base[-1]), (f"last{last}", model[-last:].mean(), base[-last:].mean())):
                out[f"{prefix}_{suffix}"] = float(m)
                out[f"baseline_{prefix}_{suffix}"] = float(b)
                out[f"relative_{prefix}_{suffix}"] = float(m / b) if b > 0 else None

        summary("bce", per["bce"], per["base"])
        out["bce_per_step"] = per["bce"].tolist()
        out["baseline_bce_per_step"] = per["base"].tolist()
        if self.has_collisions:
            summary("relational_bce", per["rbce"], per["rbase"])
        else:
            out["notes"].append("no collision masks in this dataset: relational BCE not reported")
        if self.has_groups and self._k is not None and self._k > 1:
            out["ari_mean"] = float(per["ari"].mean())
            out["ari_last"] = float(per["ari"][-1])
            out["ari_per_step"] = per["ari"].tolist()
        else:
            out["ari_mean"] = out["ari_last"] = None
            out["notes"].append("ARI not reported: " + ("the dataset has no groups" if not self.has_groups
                                                          else "K=1 predictions (one component groups nothing)"))
        out["iou_last"] = float(per["iou"][-1])
        out[f"iou_last{last}"] = float(per["iou"][-last:].mean())
        out["iou_per_step"] = per["iou"].tolist()
        out.update(self._late_result(per["ari"], grouped=out["ari_mean"] is not None))
        out.update(self._grouping_result(grouped=out["ari_mean"] is not None, notes=out["notes"]))
        if out["late_from"] is None:
            out["notes"].append(f"no late steps ({self.steps} steps, sim_observe {self.config.sim_observe}): "
                                "ari_video and ari_late not reported")
        if self._sim is not None:
            out["sim_observe"] = self.config.sim_observe
            out["simulation_bce"] = (self._sim["model"].cpu() / n).tolist()
            out["baseline_simulation_bce"] = (self._sim["base"].cpu() / n).tolist()
            out["simulation_iou"] = (self._sim["iou"].cpu() / n).tolist()
        else:
            out["sim_observe"] = out["simulation_bce"] = out["baseline_simulation_bce"] = out["simulation_iou"] = None
        return out

    def _late_result(self, ari_per_step: torch.Tensor, grouped: bool) -> dict[str, Any]:
        """``late_from`` and the late-step grouping scores: ``ari_video`` (mean over sequences of the
        ARI of the late frames as one clustering) and ``ari_late`` (mean over sequences and late
        steps of the per-frame ARI); None where not measured."""
        out: dict[str, Any] = {"late_from": self.late_from, "ari_video": None, "ari_late": None}
        if self.late_from is None or not grouped:
            return out
        out["ari_video"] = float(self._late["ari_video"] / self.n)
        out["ari_late"] = float(ari_per_step[self.late_from:].mean())
        return out

    def _grouping_result(self, grouped: bool, notes: list[str]) -> dict[str, Any]:
        """The grouping diagnostics (metrics.grouping_counts) over the late steps, and per step;
        None, with a line added to ``notes``, where they are not measured."""
        out: dict[str, Any] = {name: None for name in GROUPING_RATES}
        out.update({f"{name}_per_step": None for name in GROUPING_RATES})
        if not grouped:
            notes.append("grouping diagnostics (merge / split rates, pair precision / recall) not reported: no ARI either")
            return out
        counts = {name: v.cpu() for name, v in self._grouping.items()}
        per_step = [grouping_rates({name: v[t] for name, v in counts.items()}) for t in range(self.steps)]
        for name in GROUPING_RATES:
            out[f"{name}_per_step"] = [step[name] for step in per_step]
        if self.late_from is None:
            notes.append("no late steps: the grouping diagnostics are reported per step only")
            return out
        late = grouping_rates({name: v[self.late_from:] for name, v in counts.items()})
        out.update(late)
        if late["merge_rate"] is None:
            notes.append("no ball in the late frames: merge and split rates not reported")
        return out

    # ----------------------------------------------------------------------- one call
    def eval(self, predictions: Mapping[str, Any]) -> dict[str, Any]:
        """Score whole-split predictions (numpy / torch / lazy Zarr arrays), streaming in batches.
        Shapes are checked on the (lazy) arrays before any data is read."""
        arrays = {name: v for name, v in predictions.items() if name in PREDICTION_ARRAYS}
        for name, shape in self.check_layout(arrays).items():
            if shape[0] != self.n:
                raise RnemBenchError(f"{name} covers {shape[0]} sequences, the {self.config.split} split has {self.n}")
        self.reset()
        bs = self.config.batch_size
        for start in range(0, self.n, bs):
            self.update(start, {name: v[start : start + bs] for name, v in arrays.items()})
        return self.result()

    def check_layout(self, predictions: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """One-line errors for missing arrays or wrong shapes (all but the sequence axis), read
        from ``.shape`` alone, so a lazy array is never loaded to find out it is wrong. Returns
        the shapes."""
        T, S = self.steps, self.size
        shapes = _shapes(predictions)
        if "psi" in shapes:
            if "prediction" in shapes:
                raise RnemBenchError("give either 'psi' (+ 'gamma') or 'prediction' (+ 'gamma'), not both")
            psi = shapes["psi"]
            if len(psi) != 5 or psi[1] != T or psi[-2:] != (S, S) or not 1 <= psi[2] <= MAX_K:
                raise RnemBenchError(f"psi must be (N, {T}, K, {S}, {S}) with 1 <= K <= {MAX_K}, got {psi}")
            if "gamma" in shapes:
                if shapes["gamma"] != psi:
                    raise RnemBenchError(f"gamma has shape {shapes['gamma']}, psi has {psi}")
            elif psi[2] > 1:
                raise RnemBenchError("mixture predictions (K > 1) need 'gamma' as well as 'psi'")
        elif "prediction" in shapes:
            pred = shapes["prediction"]
            if len(pred) != 4 or pred[1] != T or pred[-2:] != (S, S):
                raise RnemBenchError(f"prediction must be (N, {T}, {S}, {S}), got {pred}")
            if "gamma" in shapes:  # a composite prediction with its masks
                gamma = shapes["gamma"]
                if len(gamma) != 5 or gamma[:2] != pred[:2] or gamma[-2:] != pred[-2:] or not 1 <= gamma[2] <= MAX_K:
                    raise RnemBenchError(f"gamma beside a prediction {pred} must be ({pred[0]}, {T}, K, {S}, {S}) "
                                         f"with 1 <= K <= {MAX_K}, got {gamma}")
        else:
            raise RnemBenchError("predictions need 'psi' and 'gamma', 'prediction', or 'prediction' and 'gamma'")
        if "simulation" in shapes:
            sim, obs = shapes["simulation"], self.config.sim_observe
            if len(sim) != 4 or sim[-2:] != (S, S) or sim[1] < 1:
                raise RnemBenchError(f"simulation must be (N, S, {S}, {S}), got {sim}")
            if obs + sim[1] > T:
                raise RnemBenchError(f"simulation of {sim[1]} steps after {obs} observed frames needs "
                                     f"{obs + sim[1] + 1} frames, the dataset has {T + 1}")
        return shapes

    # ------------------------------------------------------------------------- helpers
    def _truth(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        names = ["features"] + (["groups"] if self.has_groups else []) + (["collisions"] if self.has_collisions else [])
        return {name: torch.from_numpy(self.ds.array(self.config.split, name)[start:stop]).to(self.device)
                for name in names}

    def _frame_predictions(self, p: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """(frame (B, T, H, W), gamma or None, K) of a batch whose layout was checked."""
        if "psi" in p:
            psi = _as_tensor(p["psi"], "psi", self.device)
            gamma = _as_tensor(p["gamma"], "gamma", self.device) if "gamma" in p else None
            return mixture_prediction(psi), gamma, psi.shape[2]
        frame = _as_tensor(p["prediction"], "prediction", self.device)
        if "gamma" not in p:
            return frame, None, 1
        gamma = _as_tensor(p["gamma"], "gamma", self.device)
        worst = float((gamma.sum(dim=2) - 1).abs().max()) if gamma.numel() else 0.0
        if worst > GAMMA_SUM_TOL:
            raise RnemBenchError(f"gamma beside a composite prediction must sum to 1 over K (its masks); "
                                 f"off by up to {worst:.3g} (tolerance {GAMMA_SUM_TOL})")
        return frame, gamma, gamma.shape[2]

    def _update_grouping(self, labels: torch.Tensor, groups: torch.Tensor) -> None:
        """Add a batch's grouping scores: labels = argmax_k gamma (B, T, H, W), groups = the true
        groups of the predicted frames 1..T (B, T, H, W)."""
        # without late steps the video ARI (of all steps here) is not kept
        per_frame, video, counts = grouping_scores(labels, groups, self.late_from or 0)  # (B, T), (B,), (B, T)
        self._sums["ari"] += per_frame.sum(0)
        if self.late_from is not None:
            self._late["ari_video"] += video.sum()
        for name, v in counts.items():
            self._grouping[name] += v.sum(0)

    def _update_simulation(self, sim: torch.Tensor, features: torch.Tensor) -> None:
        obs, S = self.config.sim_observe, sim.shape[1]
        target = features[:, obs + 1 : obs + 1 + S]
        base = features[:, obs - 1 : obs]  # copy the last observed frame (broadcast over S)
        if self._sim is None:
            self._sim = {name: torch.zeros(S, dtype=torch.float64, device=self.device) for name in ("model", "base", "iou")}
        self._sim["model"] += bce(sim, target).sum(0)
        self._sim["base"] += copy_frame_bce(base, target).sum(0)
        self._sim["iou"] += foreground_iou(sim, target).sum(0)


PREDICTION_ARRAYS = ("psi", "gamma", "prediction", "simulation")


def _shapes(predictions: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Shapes of the prediction arrays, read without loading them (numpy, torch, Zarr)."""
    out = {}
    for name in PREDICTION_ARRAYS:
        if name in predictions:
            shape = getattr(predictions[name], "shape", None)
            if shape is None or len(shape) == 0:
                raise RnemBenchError(f"{name} must be an array with a sequence axis, got {type(predictions[name]).__name__}")
            out[name] = tuple(int(v) for v in shape)
    return out


def copy_baselines(ds: Dataset, batch_size: int = 500) -> dict[str, float]:
    """The copy-current-frame losses of a dataset's test split, as the evaluator scores them
    (the values ``leaderboard.board.COPY_BASELINES`` pins per task): ``{"bce_last": ...}``."""
    steps = ds.array("test", "features").shape[1] - 1

    class CopyFrames:  # lazy predictions: step t predicts frame t + 1 by copying frame t
        shape = (ds.counts["test"], steps, *ds.array("test", "features").shape[2:])

        def __getitem__(self, rows):
            return ds.array("test", "features")[rows][:, :-1]

    metrics = Evaluator(ds, EvalConfig(batch_size=batch_size)).eval({"prediction": CopyFrames()})
    return {key.removeprefix("baseline_"): metrics[key] for key in sorted(metrics)
            if key.startswith("baseline_") and key.endswith(("_last", "_last10")) and metrics[key] is not None}


GRIDS = (2, 3, 4)  # the n x n grids of the grid ARI baseline


def grid_ari_baselines(ds: Dataset, batch_size: int = 500) -> dict[str, float]:
    """The ARI of fixed n x n grids (n in ``GRIDS``) on a dataset's test split, averaged over the
    frames a model's ARI is (frames 1..T of every sequence): what a partition that knows nothing of
    objects scores (``leaderboard.board.GRID_ARI`` pins it per task): ``{"2x2": ..., "3x3": ...}``."""
    if not ds.has_groups:
        raise RnemBenchError(f"{ds.path} has no 'groups' array: no ARI to compare with")
    groups = ds.array("test", "groups")
    n, frames, height, width = groups.shape
    sums = dict.fromkeys(GRIDS, 0.0)
    for start in range(0, n, batch_size):
        truth = torch.from_numpy(np.asarray(groups[start:start + batch_size]))[:, 1:]
        for g in GRIDS:
            pred = grid_partition(height, width, g).expand(truth.shape)
            sums[g] += float(adjusted_rand_index(pred, truth).sum())
    return {f"{g}x{g}": round(total / (n * (frames - 1)), 6) for g, total in sums.items()}
