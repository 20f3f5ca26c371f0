"""CLI: ``rnem-bench submit RESULT`` and ``rnem-bench leaderboard [TASK]``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--board", type=click.Path(path_type=Path), default=None, help="Leaderboard folder (default ./leaderboards).")
def submit(result, board):
    """Check RESULT (schema, canonical fingerprint, ranges, duplicates) and add it to the leaderboard."""
    from rnem_bench.leaderboard.board import board_dir, submit as add_entry
    from rnem_bench.leaderboard.pages import write_pages

    board = board_dir(board)
    entry = add_entry(result, board)
    click.echo(f"accepted: {entry}")
    for page in write_pages(board):
        click.echo(f"rendered {page}")


@click.command()
@click.argument("task", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "html"]), default="table", show_default=True)
@click.option("--board", type=click.Path(path_type=Path), default=None, help="Leaderboard folder (default ./leaderboards).")
@click.option("--seeds", "per_seed", is_flag=True, help="Table: list each seed's entry under its model's mean ± std.")
def leaderboard(task, fmt, board, per_seed):
    """Print the ranked tables (all tasks, or TASK) and regenerate README.md and index.html.

    Entries of one model that differ only in their seed share a row (mean ± sample std)."""
    from rnem_bench.leaderboard.board import board_dir
    from rnem_bench.leaderboard.pages import html_page, markdown, write_pages
    from rnem_bench.leaderboard.terminal import rich_tables

    board = board_dir(board)
    if fmt == "table":
        from rich.console import Console

        console = Console()
        for table in rich_tables(board, task, width=console.width, per_seed=per_seed):
            console.print(table)
    elif fmt == "markdown":
        click.echo(markdown(board, task))
    else:
        click.echo(html_page(board))
    if board.is_dir():  # regenerate the pages of an existing board; never litter a stray folder
        write_pages(board)
