"""The comparison ``reproduce`` prints: ours (mean ± sd over seeds) beside the paper's figures, the
claims judged on them, and the JSON summary of a reproduce call."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import click

from rnem_bench.leaderboard.groups import seed_stats_text
from rnem_bench.reproduce.claims import FAILS, HOLDS, NOT_MEASURED, check_claims
from rnem_bench.reproduce.claims import claims_markdown as claims_md
from rnem_bench.reproduce.jobs import Job
from rnem_bench.reproduce.scoring import Outcome


COLUMNS = (("ari", "ARI"), ("bce", "BCE last"), ("relational_bce", "relational BCE last"),
           ("relative_bce", "BCE / copy"), ("relative_relational_bce", "relational BCE / copy"), ("simulation_bce", "sim. BCE"))


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(outcomes: list[Outcome]) -> dict[tuple[str, str], dict[str, Any]]:
    """(reference run, test task) -> K, seeds, full-training flag and mean/sd of each metric over seeds."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for o in outcomes:
        row = rows.setdefault((o.job.run.name, o.task), {"k": o.k, "seeds": [], "full": True, "values": {}, "run": o.job.run})
        row["seeds"].append(o.job.seed)
        row["full"] = row["full"] and o.full_training
        for name, value in o.metrics.items():
            row["values"].setdefault(name, []).append(value)
    for row in rows.values():
        row["stats"] = {name: _mean_sd(v) for name, v in row["values"].items()}
    return rows


def print_table(rows: dict[tuple[str, str], dict[str, Any]], preset: str, tier: str = "paper") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rnem-bench reproduce: ours (mean ± sd over seeds) | paper", show_lines=False)
    for header in ("run", "test", "K", "seeds", "training"):
        table.add_column(header)
    for _, header in COLUMNS:
        table.add_column(header, justify="right")
    for (name, task), row in sorted(rows.items()):
        paper = row["run"].paper.get(task, {})
        cells = []
        for metric, _ in COLUMNS:
            ours = row["stats"].get(metric)
            text = "—" if ours is None else seed_stats_text(ours[0], ours[1], len(row["seeds"]))
            if metric in paper:
                text += f" | {paper[metric]:g}"
            cells.append(text)
        training = "full" if row["full"] else ("shortened" if preset == "paper" else f"preset {preset}")
        table.add_row(name, task, str(row["k"]), str(len(row["seeds"])), training, *cells)
    console = Console()
    if not console.is_terminal:  # logs and pipes: do not squeeze 11 columns into 80 characters
        console = Console(width=200)
    console.print(table)
    colours = {HOLDS: "green", FAILS: "red", NOT_MEASURED: "yellow"}
    for v in check_claims(rows, tier):
        console.print(f"  {v.claim.id} [{colours[v.status]}]{v.status:>13}[/]  {v.claim.text}\n"
                      f"  {'':16}{v.numbers}", soft_wrap=True)
    if any(not row["full"] for row in rows.values()):
        console.print("[yellow]Rows not marked 'full' come from a shortened budget or a small preset: "
                      "they are not reproductions of the paper.[/]")


def write_summary(out: Path, task: str, preset: str, summaries: dict[Job, dict],
                  rows: dict[tuple[str, str], dict[str, Any]], tier: str = "paper") -> Path:
    from rnem_bench.training.checkpoint import atomic_write_text

    report = {
        "task": task, "preset": preset,
        "runs": [{"run": j.run.name, "seed": j.seed, "rundir": str(j.rundir), **s} for j, s in summaries.items()],
        "rows": [{"run": name, "test": t, "k": r["k"], "seeds": r["seeds"], "full_training": r["full"],
                  "ours": {m: {"mean": v[0], "sd": v[1]} for m, v in r["stats"].items()},
                  "paper": r["run"].paper.get(t, {})} for (name, t), r in sorted(rows.items())],
        "claims": [{"id": v.claim.id, "claim": v.claim.text, "verdict": v.status, "numbers": v.numbers}
                   for v in check_claims(rows, tier)],
    }
    path = out / "results" / f"reproduce-{task}.json"
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return path


def show_comparison(outcomes: list[Outcome], preset: str, tier: str, claims_markdown: Path | None) -> dict:
    """Print the table and the claims of the scored outcomes (and write the claims as Markdown
    when asked); returns the aggregated rows."""
    rows = aggregate(outcomes)
    print_table(rows, preset, tier)
    if claims_markdown is not None:
        claims_markdown.write_text(claims_md(check_claims(rows, tier)))
        click.echo(f"wrote {claims_markdown}")
    return rows
