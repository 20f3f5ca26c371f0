"""The paper's claims, checked against scored reference runs (``rnem-bench reproduce``).

Each claim is a statement of the paper about the reference runs (``baselines/``), written for
the paper tier's names (``balls4-rnem-k5`` evaluated on ``balls4``); on the CPU tier the same
claim reads the ``mini-`` reference runs and tasks. A claim is judged on the mean over seeds and comes
out as "holds", "does not hold" or "not measured" (some run it needs is not scored yet), always
with the numbers it was judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rnem_bench.leaderboard.groups import seed_stats_text

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"
ARI_ABOUT = 0.1  # "an ARI score of about 0.8": within 0.1
AS_GOOD = 0.05   # "as good": relative BCE within 5%

NAMES = {"rnem-k5": "R-NEM", "rnem-k8": "R-NEM K=8", "rnem-noatt": "R-NEM no-att", "rnn-em": "RNN-EM",
         "rnn": "RNN", "lstm": "LSTM"}


class Missing(Exception):
    """A run the claim needs has not been scored."""


class Scores:
    """Mean (and sd) over seeds of a metric of ``(reference run, test task)``, tier prefix added."""

    def __init__(self, rows: dict[tuple[str, str], dict[str, Any]], prefix: str):
        self.rows, self.prefix = rows, prefix
        self.used: dict[str, int] = {}  # model -> seeds, of every figure read since the last reset

    def _key(self, model: str, task: str) -> tuple[str, str]:
        """(reference run, test task): balls runs train on balls4 and are also scored on balls678."""
        if task == "curtain":
            return f"{self.prefix}curtain-{model.removesuffix('-k5')}", f"{self.prefix}curtain"
        return f"{self.prefix}balls4-{model}", f"{self.prefix}{task}"

    def stat(self, model: str, task: str, metric: str) -> tuple[float, float]:
        key = self._key(model, task)
        stats = self.rows.get(key, {}).get("stats", {})
        if metric not in stats:
            raise Missing(f"{key[0]} on {key[1]}")
        self.used[model] = max(self.used.get(model, 0), self.seeds(model, task, metric))
        return stats[metric]

    def seeds(self, model: str, task: str, metric: str) -> int:
        """How many seeds ``metric`` was scored on (older result files lack the newer metrics)."""
        return len(self.rows[self._key(model, task)]["values"][metric])

    def __call__(self, model: str, task: str, metric: str) -> float:
        return self.stat(model, task, metric)[0]

    def show(self, model: str, task: str, metric: str) -> str:
        mean, sd = self.stat(model, task, metric)
        n, total = self.seeds(model, task, metric), len(self.rows[self._key(model, task)]["seeds"])
        partial = f" ({n} of {total} seeds)" if n < total else ""  # older result files lack newer metrics
        return f"{NAMES[model]} {seed_stats_text(mean, sd, n, digits=4)}{partial}"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    check: Callable[[Scores], tuple[bool, str]]   # -> (holds, the numbers it was judged on)


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    status: str     # HOLDS, FAILS or NOT_MEASURED
    numbers: str


def _close_calls(s: Scores, task: str, metric: str, pairs: list[tuple[str, str]]) -> str:
    """" (within one seed sd: A vs B)" for the compared pairs whose means differ by less than the
    larger seed sd of the two: the order of their means is not settled by the seeds run so far."""
    close = []
    for a, b in pairs:
        (ma, sa), (mb, sb) = s.stat(a, task, metric), s.stat(b, task, metric)
        if abs(ma - mb) < max(sa, sb):
            close.append(f"{NAMES[a]} vs {NAMES[b]}")
    return f" (within one seed sd: {', '.join(close)})" if close else ""


def _below(s: Scores, task: str, metric: str, better: str, *others: str) -> tuple[bool, str]:
    """``better`` has a lower ``metric`` than each of ``others``."""
    holds = all(s(better, task, metric) < s(o, task, metric) for o in others)
    return holds, (f"{metric}: " + ", ".join(s.show(m, task, metric) for m in (better, *others))
                   + _close_calls(s, task, metric, [(better, o) for o in others]))


def _chain(s: Scores, task: str, metric: str, *order: str) -> tuple[bool, str]:
    """``metric`` increases along ``order`` (each below the next)."""
    values = [s(m, task, metric) for m in order]
    holds = all(a < b for a, b in zip(values, values[1:]))
    # each pair joined by how it actually compares, so a broken order reads as such
    text = s.show(order[0], task, metric)
    for (a, b), m in zip(zip(values, values[1:]), order[1:]):
        text += f" {'<' if a < b else '>='} {s.show(m, task, metric)}"
    return holds, f"{metric}: {text}" + _close_calls(s, task, metric, list(zip(order, order[1:])))


def _both(*parts: tuple[bool, str]) -> tuple[bool, str]:
    return all(h for h, _ in parts), "; ".join(text for _, text in parts)


def c1(s: Scores) -> tuple[bool, str]:
    others = ("rnn-em", "lstm", "rnn")
    return _both(_below(s, "balls4", "bce", "rnem-k5", *others), _below(s, "balls4", "relational_bce", "rnem-k5", *others))


def _grid_floor(s: Scores, task: str, metric: str = "ari_mean") -> str:
    """Where the task's grids are pinned, the best of them on ``metric``: what a partition that
    knows nothing of objects gets (leaderboard.board); the claims' verdicts do not use it."""
    from rnem_bench.leaderboard.board import best_grid

    best = best_grid(f"{s.prefix}{task}", metric)
    return "" if best is None else f"; a fixed {best[0]} grid, which knows no objects, scores {best[1]:.3g}"


def _grid_in_brackets(s: Scores, task: str, metric: str) -> str:
    floor = _grid_floor(s, task, metric)
    return f" ({floor.removeprefix('; ')})" if floor else ""


def _where_scored(s: Scores, task: str, metric: str, models: tuple[str, ...], sep: str = ", ") -> str:
    """``metric`` of each model beside the verdict (not judged): older result files lack the newer
    metrics, so a model without it reads "not scored"."""
    parts = []
    for m in models:
        try:
            parts.append(s.show(m, task, metric))
        except Missing:
            parts.append(f"{NAMES[m]} not scored")
    return f"; {metric}: " + sep.join(parts)


def _video_ari(s: Scores, *models: str) -> str:
    """Video ARI (late frames as one clustering, which identity switches cost) of ``models`` on 4
    balls, beside the best grid on the same score."""
    return _where_scored(s, "balls4", "ari_video", models, " vs ") + _grid_in_brackets(s, "balls4", "ari_video")


def c2(s: Scores) -> tuple[bool, str]:
    ari = s("rnem-k5", "balls4", "ari")
    return abs(ari - 0.8) <= ARI_ABOUT, (f"ari: {s.show('rnem-k5', 'balls4', 'ari')} (paper 0.8; holds within "
                                         f"±{ARI_ABOUT}){_grid_floor(s, 'balls4')}{_video_ari(s, 'rnem-k5')}")


def c3(s: Scores) -> tuple[bool, str]:
    ari = s("rnem-k8", "balls4", "ari") > s("rnem-k5", "balls4", "ari")
    return _both((ari, f"ari: {s.show('rnem-k8', 'balls4', 'ari')} vs {s.show('rnem-k5', 'balls4', 'ari')}"
                       f"{_grid_floor(s, 'balls4')}{_video_ari(s, 'rnem-k8', 'rnem-k5')}"),
                 _below(s, "balls4", "relational_bce", "rnem-k8", "rnem-k5"))


def c4(s: Scores) -> tuple[bool, str]:
    models = ("rnem-k5", "rnn-em", "rnn", "lstm")
    best = _below(s, "balls678", "relative_bce", "rnem-k5", *models[1:])
    growth = {m: s(m, "balls678", "relative_bce") / s(m, "balls4", "relative_bce") for m in models}
    worst = max(growth, key=growth.get)
    text = "relative BCE 6-8 / 4 balls: " + ", ".join(f"{NAMES[m]} {g:.3g}x" for m, g in growth.items())
    return _both(best, (worst == "lstm", text))


def c5(s: Scores) -> tuple[bool, str]:
    rnem4, noatt4 = s("rnem-k5", "balls4", "relative_bce"), s("rnem-noatt", "balls4", "relative_bce")
    as_good = noatt4 <= rnem4 * (1 + AS_GOOD)
    text = (f"4 balls relative_bce: {s.show('rnem-noatt', 'balls4', 'relative_bce')} vs "
            f"{s.show('rnem-k5', 'balls4', 'relative_bce')} (no-att {noatt4 / rnem4 - 1:+.1%}; as good means "
            f"at most +{AS_GOOD:.0%})" + _close_calls(s, "balls4", "relative_bce", [("rnem-noatt", "rnem-k5")]))
    return _both((as_good, text), _below(s, "balls678", "relative_bce", "rnem-k5", "rnem-noatt"))


def _simulation_floors(s: Scores, task: str) -> str:
    """The pinned floors of simulation: the trivial predictor with the lowest BCE, and the frozen
    last observed frame's IoU (leaderboard.board.FLOORS)."""
    from rnem_bench.leaderboard.board import simulation_floors

    bce, iou = simulation_floors(f"{s.prefix}{task}")
    parts = ([f"{bce[0]} BCE {bce[1]:.4g}"] if bce else []) + ([f"frozen last frame IoU {iou[1]:.3g}"] if iou else [])
    return f"; floors: {', '.join(parts)}" if parts else ""


def c6(s: Scores) -> tuple[bool, str]:
    """Judged on BCE as the paper does; the IoU of the same predictions and the floors beside it
    (a hedged, blurry rollout wins BCE without predicting any motion)."""
    holds, text = _chain(s, "balls4", "simulation_bce", "rnem-k5", "rnn-em", "rnn")
    iou = _where_scored(s, "balls4", "simulation_iou", ("rnem-k5", "rnn-em", "rnn"))
    return holds, text + iou + _simulation_floors(s, "balls4")


def c7(s: Scores) -> tuple[bool, str]:
    return _both(_chain(s, "curtain", "bce", "rnem-k5", "lstm", "rnn"),
                 _chain(s, "curtain", "relational_bce", "rnem-k5", "lstm", "rnn"))


CLAIMS = (
    Claim("C1", "On 4 balls R-NEM has lower BCE and relational BCE than RNN-EM, LSTM and RNN (fig. 3 left)", c1),
    Claim("C2", "R-NEM's ARI on 4 balls is about 0.8 (section 4.1)", c2),
    Claim("C3", "Training with K=8 improves R-NEM's ARI and relational BCE over K=5 (fig. 3 right)", c3),
    Claim("C4", "On 6-8 balls R-NEM stays best and the LSTM's relative BCE degrades most (fig. 3 middle)", c4),
    Claim("C5", "R-NEM without attention is as good on 4 balls and worse on 6-8 (fig. 3)", c5),
    Claim("C6", "Simulation BCE over 10 simulated steps: R-NEM below RNN-EM below RNN (fig. 4)", c6),
    Claim("C7", "Curtain: R-NEM below LSTM below RNN in BCE and relational BCE (section 4.2)", c7),
)


def check_claims(rows: dict[tuple[str, str], dict[str, Any]], tier: str = "paper") -> list[Verdict]:
    """Every claim's verdict on the aggregated rows of ``reproduce`` (keys: (reference run, test task))."""
    scores = Scores(rows, "mini-" if tier == "mini" else "")
    verdicts = []
    for claim in CLAIMS:
        scores.used = {}
        try:
            holds, numbers = claim.check(scores)
        except Missing as missing:
            verdicts.append(Verdict(claim, NOT_MEASURED, f"needs {missing}"))
            continue
        seeds = ", ".join(f"{NAMES[m]} {n}" for m, n in scores.used.items())
        verdicts.append(Verdict(claim, HOLDS if holds else FAILS, f"{numbers} [seeds: {seeds}]"))
    return verdicts


def claims_markdown(verdicts: list[Verdict]) -> str:
    """The claims table as Markdown (docs/results.md holds one)."""
    lines = ["| claim | verdict | our numbers |", "| --- | --- | --- |"]
    for v in verdicts:
        lines.append(f"| {v.claim.id}: {v.claim.text} | **{v.status}** | {v.numbers.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
