"""The rows of a leaderboard: entries grouped by model configuration, with their statistics.

Every result file stays one entry (the source of truth). Entries of one model configuration that
differ only in their seeds form one ``Group``: one row of mean ± sample std, ranked by the mean of
the rank metric; each seed's entry stays visible beside it (``Group.per_seed``). ``COLUMNS`` are
the metrics every rendering (terminal, Markdown, HTML) shows.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnem_bench.leaderboard.board import RANK_METRIC, entries, entry_identity, reference_rows, training_init

Result = dict[str, Any]


# ------------------------------------------------------------------------------------ columns
ALWAYS = 100  # importance of the columns a narrow terminal never drops


@dataclass(frozen=True)
class Column:
    header: str
    key: str   # metric key; a per-step list (simulation_bce) is shown as its mean
    fmt: str
    keep: int  # importance: on a narrow terminal the lowest is dropped first


# The paper's metrics, then the scores trivial predictors cannot win (the board's floor rows show
# what those predictors score): video ARI (the late frames of a sequence as one clustering) and
# the foreground IoU of the prediction, next step and in simulation.
COLUMNS = [
    Column("BCE / copy", RANK_METRIC, "{:.3f}", keep=ALWAYS),
    Column("relational BCE / copy", "relative_relational_bce_last", "{:.3f}", keep=5),
    Column("BCE", "bce_last", "{:.2f}", keep=3),
    Column("relational BCE", "relational_bce_last", "{:.2f}", keep=2),
    Column("ARI", "ari_mean", "{:.3f}", keep=6),
    Column("ARI last", "ari_last", "{:.3f}", keep=1),
    Column("video ARI", "ari_video", "{:.3f}", keep=9),
    Column("IoU last", "iou_last", "{:.3f}", keep=4),
    Column("sim. BCE (mean of 10)", "simulation_bce", "{:.2f}", keep=4),
    Column("sim. IoU (mean of 10)", "simulation_iou", "{:.3f}", keep=8),
]
ID_HEADER = ["#", "model", "K", "seeds"]
NOTE_HEADER, NOTE_KEEP = "note", 7  # shortened runs are not comparable: the note outranks the minor metrics
HEADER = ID_HEADER + [c.header for c in COLUMNS] + [NOTE_HEADER]

STATS_LINE = "Values are the mean ± sample std (n - 1) over the seeds' entries; std only when n > 1."
FLOORS_LINE = ("Rows marked (floor) are pinned trivial predictors that know nothing of objects or dynamics: a "
               "copy of the frame (in simulation: the last observed frame, frozen), softened by the constant "
               "that minimises its BCE on the valid split, blurred, the mean training image, and fixed grids "
               "as groupings. A model's score says something only where it beats every floor: hedged "
               "predictions win BCE, so IoU (of the prediction > 0.5) and video ARI are shown beside it.")


@dataclass(frozen=True)
class Stat:
    """One metric over the entries of a group (entries without it are left out)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample std (n - 1): the entries are a sample of the seeds one could train."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self, fmt: str) -> str:
        mean, std = self.mean, self.std
        if mean is None:
            return "-"
        return fmt.format(mean) if std is None else f"{fmt.format(mean)} ± {fmt.format(std)}"


def metric_value(result: Result, key: str) -> float | None:
    """A scalar metric, or the mean of a per-step list; None if absent."""
    value = result["metrics"].get(key)
    if isinstance(value, list):
        return statistics.fmean(value) if value else None
    return value


def group_key(result: Result) -> tuple:
    """Entries that differ only in their seeds share this key: the board's entry identity without
    the seeds, plus how the model was trained (a shortened run is no seed of a full one)."""
    training = result.get("training") or {}
    name, k, trained_k, _seeds, init = entry_identity(result)
    return name, k, trained_k, training.get("task"), training.get("preset"), bool(training.get("shortened")), init


@dataclass(frozen=True)
class Group:
    """The entries of one model configuration on one task, one per seed (or seed set)."""

    results: tuple[Result, ...]

    @property
    def first(self) -> Result:
        return self.results[0]  # every field below is the same for all entries (group_key)

    @property
    def model(self) -> str:
        return self.first["model"]["name"]

    @property
    def k(self) -> int:
        return self.first["model"]["k"]

    @property
    def training(self) -> dict[str, Any]:
        return self.first.get("training") or {}

    @property
    def seeds(self) -> list[int]:
        return sorted(s for r in self.results for s in r["seeds"])

    def stat(self, key: str) -> Stat:
        return Stat(tuple(v for r in self.results if (v := metric_value(r, key)) is not None))

    def series(self, key: str) -> list[list[float]]:
        """The per-step lists (e.g. simulation_bce) of the entries that have one."""
        return [r["metrics"][key] for r in self.results if r["metrics"].get(key)]

    @property
    def rank_value(self) -> float:
        mean = self.stat(RANK_METRIC).mean
        return math.inf if mean is None else mean  # the board requires it; an empty group sorts last

    @property
    def model_text(self) -> str:
        trained_k = self.training.get("k")
        return self.model + ("" if trained_k in (None, self.k) else f" (trained K={trained_k})")

    @property
    def label(self) -> str:
        return f"{self.model_text} K={self.k}"

    @property
    def seeds_text(self) -> str:
        seeds = ",".join(map(str, self.seeds))
        return seeds if len(self.results) == 1 else f"{seeds} (n={len(self.results)})"

    @property
    def note(self) -> str:
        notes = []
        trained_on = self.training.get("task")
        if trained_on not in (None, self.first["task"]):
            notes.append(f"trained on {trained_on}")
        preset = self.training.get("preset")
        if preset not in (None, "paper"):
            notes.append(f"preset {preset}")  # a small preset is always shortened: name it instead
        elif self.training.get("shortened"):
            notes.append("shortened")
        if training_init(self.first) == "pytorch":  # not the original code's init: not averaged with it
            notes.append("PyTorch init")
        return "; ".join(notes)

    def per_seed(self) -> list[Group]:
        """One group per entry, ordered by seed: the rows the aggregate was computed from."""
        return [Group((r,)) for r in sorted(self.results, key=lambda r: r["seeds"])]


def group_entries(results: list[Result]) -> list[Group]:
    """The seeds of one configuration grouped; best mean of the rank metric first."""
    by_key: dict[tuple, list[Result]] = {}
    for r in results:
        by_key.setdefault(group_key(r), []).append(r)
    groups = [Group(tuple(found)) for found in by_key.values()]
    return sorted(groups, key=lambda g: (g.rank_value, g.label, g.seeds))


def task_groups(task: str, board: Path) -> list[Group]:
    return group_entries(entries(board, task))


def group_cells(group: Group, rank: str) -> list[str]:
    """One row in HEADER order: identity, one cell per metric column, the note."""
    return ([rank, group.model_text, str(group.k), group.seeds_text]
            + [group.stat(c.key).text(c.fmt) for c in COLUMNS] + [group.note])


def group_rows(groups: list[Group]) -> list[list[str]]:
    """The ranked rows, one per configuration."""
    return [group_cells(g, str(rank)) for rank, g in enumerate(groups, 1)]


def reference_cells(task: str) -> list[list[str]]:
    """The board's floor rows (``board.reference_rows``): what trivial predictors that know nothing
    of objects or dynamics score, in the columns of the ranked rows; no rank, K or seeds."""
    rows = []
    for label, metrics in reference_rows(task):
        cells = ["", f"{label} (floor)", "", ""]
        for c in COLUMNS:
            value = metrics.get(c.key)
            cells.append("-" if value is None else c.fmt.format(value))
        rows.append(cells + ["pinned"])
    return rows


def seed_rows(groups: list[Group]) -> list[list[str]]:
    """Each entry of a group of several on its own row, under its group's rank (a group of one
    entry already is its own row)."""
    return [group_cells(one, str(rank)) for rank, g in enumerate(groups, 1) if len(g.results) > 1
            for one in g.per_seed()]


def tasks_on_board(board: Path, task: str | None = None) -> list[str]:
    """The task asked for, or every task of the benchmark (empty ones included)."""
    from rnem_bench.tasks import TASKS, get_task

    return [get_task(task).name] if task else list(TASKS)


def seed_stats_text(mean: float, sd: float | None, n: int, digits: int = 3) -> str:
    """``mean ± sd`` over n seeds (``digits`` significant digits for the mean, 2 for the sd); the
    mean alone for one seed. The form the reproduce table and the claims use."""
    return f"{mean:.{digits}g}" + (f" ± {sd:.2g}" if n > 1 else "")
