"""The leaderboard's figures (matplotlib): relative losses (paper figure 3), ARI against the best
fixed grid, and BCE per simulated step (paper figure 4), each seed drawn beside the mean."""

from __future__ import annotations

import base64
import io
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rnem_bench.leaderboard.board import RANK_METRIC, best_grid, simulation_floors
from rnem_bench.leaderboard.groups import Group

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


SIM_BASELINE_LABEL = "copy last observed frame"


@dataclass(frozen=True)
class SimulationCurves:
    """One configuration's BCE per simulated step: a curve per entry and their mean ± std."""

    label: str
    seeds: tuple[tuple[float, ...], ...]

    @property
    def steps(self) -> list[int]:
        return list(range(1, min(map(len, self.seeds)) + 1))

    def _per_step(self) -> list[list[float]]:
        return [[c[t - 1] for c in self.seeds] for t in self.steps]

    @property
    def mean(self) -> list[float]:
        return [statistics.fmean(v) for v in self._per_step()]

    @property
    def std(self) -> list[float] | None:
        return [statistics.stdev(v) for v in self._per_step()] if len(self.seeds) > 1 else None


def simulation_curves(groups: list[Group], key: str = "simulation_bce") -> list[SimulationCurves]:
    """Each configuration's per-step ``key`` (simulation_bce or simulation_iou), where scored."""
    return [SimulationCurves(g.label, tuple(map(tuple, curves))) for g in groups if (curves := g.series(key))]


def simulation_baseline(groups: list[Group]) -> list[float] | None:
    """The copy-last-observed-frame curve each result carries (``baseline_simulation_bce``). Every
    entry is scored on the same canonical test split, so the curves agree; their mean is drawn.
    None when no entry has one (then no baseline is drawn, and the caption does not claim one)."""
    curves = [c for g in groups for c in g.series("baseline_simulation_bce")]
    return [statistics.fmean(step) for step in zip(*curves)] if curves else None


@dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    figure: Figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _seed_points(ax: Axes, x: float, values: tuple[float, ...]) -> None:
    """Each seed as a small dot, spread a little sideways so equal values stay visible."""
    n = len(values)
    offsets = [(i / (n - 1) - 0.5) * 0.12 for i in range(n)] if n > 1 else [0.0]
    ax.scatter([x + o for o in offsets], values, s=10, color="black", zorder=3, linewidths=0)


def _bars(ax: Axes, groups: list[Group], series: list[tuple[str, str, str]]) -> None:
    """Per (metric key, label, colour): a bar at each group's mean, whiskers at ± sample std, a dot per seed."""
    width = 0.8 / len(series)
    for j, (key, label, color) in enumerate(series):
        for i, g in enumerate(groups):
            stat = g.stat(key)
            if stat.mean is None:
                continue
            x = i + (j - (len(series) - 1) / 2) * width
            ax.bar(x, stat.mean, width=width * 0.9, color=color, alpha=0.7, label=label if i == 0 else None)
            if stat.std is not None:
                ax.errorbar(x, stat.mean, yerr=stat.std, color="black", capsize=3, lw=1)
            _seed_points(ax, x, stat.values)
    ax.set_xticks(range(len(groups)), [g.label for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)


def _relative_plot(groups: list[Group]) -> Figure:
    fig, ax = _pyplot().subplots(figsize=(5, 3.6))
    _bars(ax, groups, [(RANK_METRIC, "BCE", "tab:blue"),
                       ("relative_relational_bce_last", "relational BCE", "tab:orange")])
    ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="copy current frame")
    ax.set_ylabel("loss / copy-frame loss")
    ax.set_title("last-step loss relative to copying the frame", fontsize=10)
    ax.legend(fontsize=7)
    return fig


ARI_SERIES = [("ari_mean", "ARI (mean over steps)", "tab:green"), ("ari_video", "video ARI (late steps)", "tab:purple")]


def _ari_plot(groups: list[Group], task: str) -> Figure:
    """Bars of the paper's ARI and of video ARI, each with a dashed line at the best fixed grid on
    the same score (a grid knows nothing of objects)."""
    series = [s for s in ARI_SERIES if any(g.stat(s[0]).values for g in groups)]
    fig, ax = _pyplot().subplots(figsize=(5, 3.6))
    _bars(ax, groups, series)
    for key, label, color in series:
        floor = best_grid(task, key)
        if floor:
            name, value = floor
            ax.axhline(value, color=color, lw=0.9, ls="--", label=f"best grid ({name}) on {label.split(' (')[0]}")
    values = [v for g in groups for key, _, _ in series for v in g.stat(key).values]
    ax.set_ylim(min([0.0, *values]), 1)
    ax.set_title("grouping: ARI and video ARI", fontsize=10)
    ax.legend(fontsize=6)
    return fig


def _simulation_panel(ax: Axes, curves: list[SimulationCurves], baseline: list[float] | None,
                      floors: list[tuple[str, float]], ylabel: str) -> None:
    """One score per simulated step: per configuration a thin line with small markers per seed and
    mean ± std as error bars; the copy baseline per step, and the floors' means as dashed lines."""
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        for seed in c.seeds:
            ax.plot(c.steps, seed[:len(c.steps)], color=color, lw=0.6, alpha=0.4, marker=".", ms=3)
        ax.errorbar(c.steps, c.mean, yerr=c.std, color=color, lw=1.8, capsize=2, label=c.label)
    if baseline:
        ax.plot(range(1, len(baseline) + 1), baseline, color="black", ls="--", lw=1.2, label=SIM_BASELINE_LABEL)
    for j, (label, value) in enumerate(floors):
        ax.axhline(value, color="grey", lw=0.9, ls=(0, (1 + j, 2)), label=f"{label} (mean of 10)")
    ax.set_xlabel("simulated step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)


def _simulation_plot(groups: list[Group], task: str) -> Figure:
    """Paper figure 4 (BCE per simulated step) and, beside it, the foreground IoU of the same
    predictions, each with the pinned floors: the best-BCE trivial predictor, the frozen frame."""
    iou = simulation_curves(groups, "simulation_iou")
    fig, axes = _pyplot().subplots(1, 2 if iou else 1, figsize=(9 if iou else 5, 3.6), squeeze=False)
    bce_floor, frozen = simulation_floors(task)
    _simulation_panel(axes[0][0], simulation_curves(groups), simulation_baseline(groups),
                      [bce_floor] if bce_floor else [], "BCE")
    axes[0][0].set_title("simulation: BCE per simulated step", fontsize=10)
    if iou:
        _simulation_panel(axes[0][1], iou, None, [frozen] if frozen else [], "foreground IoU")
        axes[0][1].set_ylim(0, 1)
        axes[0][1].set_title("simulation: IoU (prediction > 0.5) per step", fontsize=10)
    return fig


BAR_CAPTION = "Bars: mean over seeds; whiskers: ± sample std; dots: seeds."


def plots(groups: list[Group], task: str | None = None) -> list[Plot]:
    """The task's figures, each only if some entry has its metric. The caller closes them."""
    found = []
    if groups:
        found.append(Plot("Relative losses", "Loss of the last predicted frame relative to copying the current "
                          f"frame (paper, figure 3). {BAR_CAPTION}", _relative_plot(groups)))
    if any(g.stat(key).values for g in groups for key, _, _ in ARI_SERIES):
        dashed = " Dashed: the best fixed grid on the same score, which knows nothing of objects." if task else ""
        found.append(Plot("ARI", f"ARI of the groups, mean over steps, and video ARI (the late frames of a sequence "
                          f"as one clustering). {BAR_CAPTION}{dashed}", _ari_plot(groups, task or "")))
    if simulation_curves(groups):
        baseline = simulation_baseline(groups)
        found.append(Plot("Simulation", "BCE per simulated step after 10 observed frames (paper, figure 4) and, where "
                          "scored, the foreground IoU of the same predictions. Thin lines with dots: seeds; thick "
                          "line and error bars: mean ± sample std"
                          + (f"; dashed black: the {SIM_BASELINE_LABEL} baseline" if baseline else "")
                          + "; grey: pinned floors (the best-BCE trivial predictor, the frozen last frame).",
                          _simulation_plot(groups, task or "")))
    return found


def png_base64(fig: Figure) -> str:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()
