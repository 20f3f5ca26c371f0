"""The leaderboard in a terminal (rich): one table per task fitted to the terminal's width.

Headers wrap and minor columns drop (named under the table), numbers are never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from rnem_bench.leaderboard.board import RANK_METRIC, grid_ari_text
from rnem_bench.leaderboard.groups import (
    ALWAYS, COLUMNS, ID_HEADER, NOTE_HEADER, NOTE_KEEP, Group, group_cells, reference_cells, task_groups,
    tasks_on_board,
)

if TYPE_CHECKING:
    from rich.table import Table


TEXT_MIN = 10  # a text column (model, seeds, note) may fold down to this width; numbers never


@dataclass(eq=False)  # columns are told apart by identity
class TermColumn:
    header: str
    cells: list[str]
    keep: int
    number: bool
    scored: int = -1  # the first this many cells are entries (the rest: pinned floors); -1: all

    def min_width(self) -> int:
        """Numbers need their full text; headers may wrap at spaces; text may fold."""
        longest = max(map(len, self.cells), default=1)
        header_word = max(len(word) for word in self.header.split())
        return max(longest if self.number else min(longest, TEXT_MIN), header_word)

    def full_width(self) -> int:
        return max([len(self.header), *map(len, self.cells)])

    @property
    def empty(self) -> bool:
        """No entry has this metric (whatever the floors score): the first column to drop."""
        cells = self.cells if self.scored < 0 else self.cells[: self.scored]
        return all(c in ("-", "") for c in cells)


def _term_columns(table_rows: list[list[str]], scored: int = -1) -> list[TermColumn]:
    specs = [("#", ALWAYS, True), ("model", ALWAYS, False), ("K", ALWAYS, True), ("seeds", ALWAYS, False)]
    specs += [(c.header, c.keep, True) for c in COLUMNS] + [(NOTE_HEADER, NOTE_KEEP, False)]
    cells = list(zip(*table_rows)) or [()] * len(specs)
    return [TermColumn(header, list(col), keep, number, scored) for (header, keep, number), col in zip(specs, cells)]


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
        scored = len(table_rows)
        if groups:  # the pinned floors under the ranked rows, dimmed
            floors = reference_cells(name)
            dim |= set(range(len(table_rows), len(table_rows) + len(floors)))
            table_rows += floors
        columns = _term_columns(table_rows, scored)
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
