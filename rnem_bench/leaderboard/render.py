"""Render the leaderboards: terminal (rich), Markdown (leaderboards/README.md), static HTML with plots.

Every result file stays one entry (the source of truth). Rendering groups the entries of one model
configuration that differ only in their seeds into one row of mean ± sample std, ranked by the
mean of the rank metric; each seed's entry stays visible beside it (a details table in Markdown and
HTML, a dot per seed in the plots, ``--seeds`` in the terminal).
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from rnem_bench.leaderboard.board import RANK_METRIC, best_grid, entries, entry_identity, grid_ari_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.table import Table

Result = dict[str, Any]


# ------------------------------------------------------------------------------------ columns
ALWAYS = 100  # importance of the columns a narrow terminal never drops


@dataclass(frozen=True)
class Column:
    header: str
    key: str   # metric key; a per-step list (simulation_bce) is shown as its mean
    fmt: str
    keep: int  # importance: on a narrow terminal the lowest is dropped first


COLUMNS = [
    Column("BCE / copy", RANK_METRIC, "{:.3f}", keep=ALWAYS),
    Column("relational BCE / copy", "relative_relational_bce_last", "{:.3f}", keep=5),
    Column("BCE", "bce_last", "{:.2f}", keep=3),
    Column("relational BCE", "relational_bce_last", "{:.2f}", keep=2),
    Column("ARI", "ari_mean", "{:.3f}", keep=6),
    Column("ARI last", "ari_last", "{:.3f}", keep=1),
    Column("sim. BCE (mean of 10)", "simulation_bce", "{:.2f}", keep=4),
]
ID_HEADER = ["#", "model", "K", "seeds"]
NOTE_HEADER, NOTE_KEEP = "note", 7  # shortened runs are not comparable: the note outranks the minor metrics
HEADER = ID_HEADER + [c.header for c in COLUMNS] + [NOTE_HEADER]

STATS_LINE = "Values are the mean ± sample std (n - 1) over the seeds' entries; std only when n > 1."

CONTRIBUTING = """## Contributing an entry

Any model can enter, whatever framework it is written in:

1. Generate the task's canonical dataset: `rnem-bench generate --task TASK` (the leaderboard accepts
   only results on its fingerprint, and on the whole test split).
2. Run your model on the test split and write its predictions in the documented Zarr layout
   (`rnem_bench/evaluation/predictions.py`: `psi` and `gamma` (N, T, K, H, W) or `prediction`
   (N, T, H, W), optional `simulation`), then `rnem-bench score PREDICTIONS --task TASK`.
   Models of this repository use `rnem-bench evaluate RUNDIR` instead.
3. `rnem-bench submit RESULT.json` checks the schema, the fingerprint, the metric ranges and
   duplicates, adds `leaderboards/TASK/<entry>.json` and re-renders this page. Open a pull request
   with the new file and the re-rendered pages. No code is ever run from a submission: only the
   JSON result file is read. Submit one file per seed: the seeds of one model share a row.
"""


# --------------------------------------------------------------------------------- aggregation
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
    name, k, trained_k, _seeds = entry_identity(result)
    return name, k, trained_k, training.get("task"), training.get("preset"), bool(training.get("shortened"))


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


def rows(task: str, board: Path) -> list[list[str]]:
    return group_rows(task_groups(task, board))


def seed_rows(groups: list[Group]) -> list[list[str]]:
    """Each entry of a group of several on its own row, under its group's rank (a group of one
    entry already is its own row)."""
    return [group_cells(one, str(rank)) for rank, g in enumerate(groups, 1) if len(g.results) > 1
            for one in g.per_seed()]


def tasks_on_board(board: Path, task: str | None = None) -> list[str]:
    """The task asked for, or every task of the benchmark (empty ones included)."""
    from rnem_bench.tasks import TASKS, get_task

    return [get_task(task).name] if task else list(TASKS)


# ------------------------------------------------------------------------------------ terminal
TEXT_MIN = 10  # a text column (model, seeds, note) may fold down to this width; numbers never


@dataclass(eq=False)  # columns are told apart by identity
class TermColumn:
    header: str
    cells: list[str]
    keep: int
    number: bool

    def min_width(self) -> int:
        """Numbers need their full text; headers may wrap at spaces; text may fold."""
        longest = max(map(len, self.cells), default=1)
        header_word = max(len(word) for word in self.header.split())
        return max(longest if self.number else min(longest, TEXT_MIN), header_word)

    def full_width(self) -> int:
        return max([len(self.header), *map(len, self.cells)])

    @property
    def empty(self) -> bool:
        return all(c in ("-", "") for c in self.cells)


def _term_columns(table_rows: list[list[str]]) -> list[TermColumn]:
    specs = [("#", ALWAYS, True), ("model", ALWAYS, False), ("K", ALWAYS, True), ("seeds", ALWAYS, False)]
    specs += [(c.header, c.keep, True) for c in COLUMNS] + [(NOTE_HEADER, NOTE_KEEP, False)]
    cells = list(zip(*table_rows)) or [()] * len(specs)
    return [TermColumn(header, list(col), keep, number) for (header, keep, number), col in zip(specs, cells)]


def _rich_table(title: str, columns: list[TermColumn], widths: list[int], caption: str | None = None,
                dim_rows: set[int] | None = None) -> Table:
    from rich import box
    from rich.table import Table

    # one space of padding beside the separator: two spaces between columns, so more of them fit
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0), caption_justify="left", min_width=len(title))
    for col, width in zip(columns, widths):
        # fold, never an ellipsis: even a table squeezed below its minimum loses no digit
        table.add_column(col.header, width=width, overflow="fold", justify="right" if col.number else "left")
    for i, row in enumerate(zip(*(c.cells for c in columns))):
        table.add_row(*row, style="dim" if dim_rows and i in dim_rows else None)
    return table


def _table_width(columns: list[TermColumn], widths: list[int]) -> int:
    """What the table needs with these column widths (padding and separators included)."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=100_000)
    return Measurement.get(console, console.options, _rich_table("", columns, widths)).maximum


def fit_columns(columns: list[TermColumn], width: int) -> tuple[list[TermColumn], list[int], list[TermColumn]]:
    """Drop the least important columns (empty ones first) until every number fits in full, take
    back any dropped one that fits after all, then spend what is left on unfolded text and unwrapped
    headers. Returns the kept columns, their widths and the dropped ones."""
    def fits(cols: list[TermColumn]) -> bool:
        return _table_width(cols, [c.min_width() for c in cols]) <= width

    kept = list(columns)
    droppable = sorted((c for c in columns if c.keep < ALWAYS), key=lambda c: (not c.empty, c.keep))
    while droppable and not fits(kept):
        kept.remove(droppable.pop(0))
    for col in sorted((c for c in columns if c not in kept and not c.empty), key=lambda c: -c.keep):
        if fits(trial := [c for c in columns if c in kept or c is col]):
            kept = trial
    widths = [c.min_width() for c in kept]
    spare = width - _table_width(kept, widths)
    # text before numbers, the least needy first: short texts (seeds, note) unfold before a long name
    for i in sorted(range(len(kept)), key=lambda i: (kept[i].number, kept[i].full_width() - widths[i])):
        grow = min(max(spare, 0), kept[i].full_width() - widths[i])
        widths[i] += grow
        spare -= grow
    return kept, widths, [c for c in columns if c not in kept]


def _terminal_rows(groups: list[Group], per_seed: bool) -> tuple[list[list[str]], set[int]]:
    """The ranked rows; with ``per_seed`` each entry of a group of several under it (dimmed)."""
    table_rows: list[list[str]] = []
    dim: set[int] = set()
    for rank, g in enumerate(groups, 1):
        table_rows.append(group_cells(g, str(rank)))
        if per_seed and len(g.results) > 1:
            for one in g.per_seed():
                dim.add(len(table_rows))
                table_rows.append(["", "", "", f"seed {one.seeds_text}"] + group_cells(one, "")[len(ID_HEADER):])
    return table_rows, dim


def rich_tables(board: Path, task: str | None = None, *, width: int = 80, per_seed: bool = False) -> Iterator[Table]:
    """One table per task that fits ``width`` columns: headers wrap and minor columns drop (named
    under the table), numbers are never cut. ``per_seed`` adds each seed's entry under its mean."""
    for name in tasks_on_board(board, task):
        groups = task_groups(name, board)
        table_rows, dim = _terminal_rows(groups, per_seed)
        columns = _term_columns(table_rows)
        if not groups:  # an empty board: just the columns the ranking needs, headers unwrapped
            columns = [c for c in columns if c.keep == ALWAYS]
        kept, widths, dropped = fit_columns(columns, width)
        notes = []
        if not groups:
            notes.append("no entries yet")
        if any(len(g.results) > 1 for g in groups):
            notes.append("mean ± sample std over seeds" + ("" if per_seed else "; --seeds lists each seed"))
        grids = grid_ari_text(name)
        if grids and groups:
            notes.append(f"ARI reference: {grids}")
        if dropped and groups:
            hidden = ", ".join(c.header for c in dropped)
            notes.append(f"not shown at width {width}: {hidden}; --format markdown has all")
        yield _rich_table(f"{name}  (ranked by {RANK_METRIC}, lower is better)", kept, widths,
                          "\n".join(notes) or None, dim)


# ------------------------------------------------------------------------------------ Markdown
def _md_table(header: list[str], table_rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in table_rows])


def markdown(board: Path, task: str | None = None) -> str:
    parts = ["# rnem-bench leaderboards", "",
             f"Generated by `rnem-bench leaderboard`; do not edit by hand. Ranked by `{RANK_METRIC}` "
             "(BCE of the last predicted frame relative to copying the current frame; lower is better). "
             "BCE uses max_k psi_k for mixture models (paper, footnote 4). ARI ignores background and overlap. "
             f"Entries of one model that differ only in their seed share a row. {STATS_LINE} "
             "Plots: `index.html`.", ""]
    for name in tasks_on_board(board, task):
        parts += [f"## {name}", ""]
        groups = task_groups(name, board)
        grids = grid_ari_text(name)
        reference = [f"ARI reference: {grids}.", ""] if grids else []
        if not groups:
            parts += ["No entries yet.", ""] + reference
            continue
        parts += _md_table(HEADER, group_rows(groups)) + [""] + reference
        per_seed = seed_rows(groups)
        if per_seed:
            parts += ["<details><summary>Per-seed entries</summary>", ""]
            parts += _md_table(HEADER, per_seed) + ["", "</details>", ""]
    parts.append(CONTRIBUTING)
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- plot data
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


def simulation_curves(groups: list[Group]) -> list[SimulationCurves]:
    return [SimulationCurves(g.label, tuple(map(tuple, curves)))
            for g in groups if (curves := g.series("simulation_bce"))]


def simulation_baseline(groups: list[Group]) -> list[float] | None:
    """The copy-last-observed-frame curve each result carries (``baseline_simulation_bce``). Every
    entry is scored on the same canonical test split, so the curves agree; their mean is drawn.
    None when no entry has one (then no baseline is drawn, and the caption does not claim one)."""
    curves = [c for g in groups for c in g.series("baseline_simulation_bce")]
    return [statistics.fmean(step) for step in zip(*curves)] if curves else None


# --------------------------------------------------------------------------------------- plots
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


def _ari_plot(groups: list[Group], floor: tuple[str, float] | None = None) -> Figure:
    fig, ax = _pyplot().subplots(figsize=(5, 3.6))
    _bars(ax, groups, [("ari_mean", "ARI (mean over steps)", "tab:green")])
    if floor:  # the best fixed grid, which knows nothing of objects
        name, value = floor
        ax.axhline(value, color="grey", lw=0.8, ls="--", label=f"fixed {name} grid (no objects)")
        ax.legend(fontsize=7)
    ax.set_ylim(min([0.0, *(v for g in groups for v in g.stat("ari_mean").values)]), 1)
    ax.set_title("ARI (mean over steps)", fontsize=10)
    return fig


def _simulation_plot(curves: list[SimulationCurves], baseline: list[float] | None) -> Figure:
    """Paper figure 4: per configuration a thin line with small markers per seed, mean ± std as error bars."""
    fig, ax = _pyplot().subplots(figsize=(5, 3.6))
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        for seed in c.seeds:
            ax.plot(c.steps, seed[:len(c.steps)], color=color, lw=0.6, alpha=0.4, marker=".", ms=3)
        ax.errorbar(c.steps, c.mean, yerr=c.std, color=color, lw=1.8, capsize=2, label=c.label)
    if baseline:
        ax.plot(range(1, len(baseline) + 1), baseline, color="black", ls="--", lw=1.2, label=SIM_BASELINE_LABEL)
    ax.set_xlabel("simulated step")
    ax.set_ylabel("BCE")
    ax.set_title("simulation: BCE per simulated step", fontsize=10)
    ax.legend(fontsize=7)
    return fig


BAR_CAPTION = "Bars: mean over seeds; whiskers: ± sample std; dots: seeds."


def plots(groups: list[Group], task: str | None = None) -> list[Plot]:
    """The task's figures, each only if some entry has its metric. The caller closes them."""
    found = []
    if groups:
        found.append(Plot("Relative losses", "Loss of the last predicted frame relative to copying the current "
                          f"frame (paper, figure 3). {BAR_CAPTION}", _relative_plot(groups)))
    if any(g.stat("ari_mean").values for g in groups):
        floor = best_grid(task or "")
        dashed = " Dashed: the best fixed grid, which knows nothing of objects." if floor else ""
        found.append(Plot("ARI", f"ARI of the groups, mean over steps. {BAR_CAPTION}{dashed}", _ari_plot(groups, floor)))
    curves = simulation_curves(groups)
    if curves:
        baseline = simulation_baseline(groups)
        found.append(Plot("Simulation", "BCE per simulated step after 10 observed frames (paper, figure 4). Thin "
                          "lines with dots: seeds; thick line and error bars: mean ± sample std"
                          + (f"; dashed: the {SIM_BASELINE_LABEL} baseline." if baseline else "."),
                          _simulation_plot(curves, baseline)))
    return found


def _png_base64(fig: Figure) -> str:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------------------------------- HTML
def _html_table(table_rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table_rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_task(name: str, board: Path) -> list[str]:
    groups = task_groups(name, board)
    out = [f'<h2 id="{html.escape(name)}">{html.escape(name)}</h2>']
    if not groups:
        return out + ["<p>No entries yet.</p>"]
    out.append(_html_table(group_rows(groups)))
    per_seed = seed_rows(groups)
    if per_seed:
        out.append(f"<details><summary>Per-seed entries ({len(per_seed)})</summary>{_html_table(per_seed)}</details>")
    grids = grid_ari_text(name)
    if grids:
        out.append(f"<p>ARI reference: {html.escape(grids)}.</p>")
    out.append('<div class="plots">')
    for plot in plots(groups, name):
        out.append(f'<figure><img alt="{html.escape(name)}: {html.escape(plot.title)}" '
                   f'src="data:image/png;base64,{_png_base64(plot.figure)}">'
                   f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>")
    return out + ["</div>"]


def html_page(board: Path) -> str:
    body = ["<h1>rnem-bench leaderboards</h1>",
            f"<p>Ranked by <code>{RANK_METRIC}</code>, lower is better. Entries of one model that differ only "
            f"in their seed share a row. {html.escape(STATS_LINE)} "
            "Generated by <code>rnem-bench leaderboard</code>.</p>"]
    for name in tasks_on_board(board):
        body += _html_task(name, board)
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f3f3f3}"
             ".plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;max-width:460px}"
             "figcaption{font-size:12px;color:#444}img{max-width:100%}summary{cursor:pointer}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rnem-bench leaderboards</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_pages(board: Path) -> list[Path]:
    """Regenerate ``README.md`` and ``index.html`` in the board folder."""
    board.mkdir(parents=True, exist_ok=True)
    md, page = board / "README.md", board / "index.html"
    md.write_text(markdown(board))
    page.write_text(html_page(board))
    return [md, page]
