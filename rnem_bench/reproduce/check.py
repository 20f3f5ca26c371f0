"""Does a fresh run reproduce a committed result? ``rnem-bench reproduce ... --check-against BOARD``.

A rerun of a reference run's seed (from a clean clone, on another machine, with another thread
count) need not give the same bits: float summation order changes with the thread count and the
CPU. What it must give is the committed figure up to the noise the reference run shows anyway. So each
paper-facing metric of the fresh run is compared with the committed result of the *same seed*,
and the difference is held against the seed-to-seed spread on the board (max - min over the
committed seeds of that reference run and test set):

    reproduced  <=>  |fresh - committed(seed)| <= max_s committed(s) - min_s committed(s)

With fewer than two committed seeds there is no spread to hold it against, and the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnem_bench.reproduce.scoring import Outcome

WITHIN, OUTSIDE, NO_SPREAD, NO_ENTRY = "within spread", "outside spread", "no spread", "not on board"


@dataclass(frozen=True)
class MetricCheck:
    run: str
    task: str
    seed: int
    metric: str
    fresh: float
    committed: float | None     # the board's result for the same seed, if any
    board: list[float]          # the metric over every committed seed of the reference run
    verdict: str

    @property
    def spread(self) -> float | None:
        return max(self.board) - min(self.board) if len(self.board) > 1 else None

    @property
    def difference(self) -> float | None:
        return None if self.committed is None else abs(self.fresh - self.committed)


def check_reproduction(fresh: list[Outcome], board: list[Outcome]) -> list[MetricCheck]:
    """One check per (fresh outcome, metric) against the board's outcomes of the same reference run
    and test set."""
    checks = []
    for o in fresh:
        same_run = [b for b in board if b.job.run.name == o.job.run.name and b.task == o.task]
        committed = next((b for b in same_run if b.job.seed == o.job.seed), None)
        for metric, value in sorted(o.metrics.items()):
            values = [b.metrics[metric] for b in same_run if metric in b.metrics]
            ref = None if committed is None else committed.metrics.get(metric)
            if ref is None:
                verdict = NO_ENTRY
            elif len(values) < 2:
                verdict = NO_SPREAD
            else:
                verdict = WITHIN if abs(value - ref) <= max(values) - min(values) else OUTSIDE
            checks.append(MetricCheck(o.job.run.name, o.task, o.job.seed, metric, value, ref, values, verdict))
    return checks


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def format_checks(checks: list[MetricCheck]) -> list[str]:
    """Plain lines, one per check, then a one-line summary."""
    lines = [f"{'run':<22} {'test':<14} {'seed':>4} {'metric':<24} {'fresh':>9} {'committed':>9} "
             f"{'|diff|':>8} {'spread':>8} {'seeds':>5}  verdict"]
    for c in checks:
        lines.append(f"{c.run:<22} {c.task:<14} {c.seed:>4} {c.metric:<24} {_num(c.fresh):>9} {_num(c.committed):>9} "
                     f"{_num(c.difference):>8} {_num(c.spread):>8} {len(c.board):>5}  {c.verdict}")
    judged = [c for c in checks if c.verdict in (WITHIN, OUTSIDE)]
    inside = sum(c.verdict == WITHIN for c in judged)
    lines.append(f"reproduction: {inside} of {len(judged)} judged metrics within the seed-to-seed spread"
                 + (f"; {len(checks) - len(judged)} not judged (no committed entry or spread)" if len(judged) < len(checks) else ""))
    return lines
