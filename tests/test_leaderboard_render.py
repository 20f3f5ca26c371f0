"""Leaderboard pages: seeds of one configuration grouped into mean ± sample std rows, ranked by the
mean; an 80-column terminal never cuts a number; Markdown and HTML keep every seed's entry."""

from __future__ import annotations

import io
import json
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from rnem_bench.leaderboard.board import RANK_METRIC
from rnem_bench.leaderboard.commands import leaderboard
from rnem_bench.leaderboard.groups import COLUMNS, group_entries, group_rows, seed_rows
from rnem_bench.leaderboard.pages import html_page, markdown
from rnem_bench.leaderboard.plots import SIM_BASELINE_LABEL, plots, simulation_baseline, simulation_curves
from rnem_bench.leaderboard.terminal import rich_tables
from test_leaderboard import valid_result

LONG_NAME = "relational-neural-expectation-maximization-without-attention-v2"  # the schema allows 64
RELS = (0.41234, 0.45678, 0.39991)  # one model's three seeds


def entry(model: str, seed: int, rel: float, *, sim_shift: float = 0.0, **training) -> dict:
    """A self-consistent balls4 result; metrics that vary with ``rel`` and the seed, so every
    column holds several distinct numbers (wide ones: BCE in the thousands)."""
    r = valid_result(model, seed=seed, rel=rel)
    m = r["metrics"]
    m["bce_last"] = m["baseline_bce_last"] * rel
    m["ari_mean"] = round(0.5 + rel / 2, 6)
    m["simulation_bce"] = [2941.125 + sim_shift + 10.5 * seed + step for step in range(10)]
    if training:
        r["training"] = training
    return r


def three_seeds(model: str = "rnem", **training) -> list[dict]:
    return [entry(model, seed, rel, **training) for seed, rel in enumerate(RELS)]


def write_board(tmp_path: Path, results: list[dict]) -> Path:
    """Entries written straight into the board folder (submit's checks are test_leaderboard's job)."""
    folder = tmp_path / "board" / "balls4"
    folder.mkdir(parents=True)
    for i, r in enumerate(results):
        (folder / f"entry{i}.json").write_text(json.dumps(r))
    return tmp_path / "board"


# ---------------------------------------------------------------------------------- grouping
def test_seeds_of_one_configuration_make_one_row_of_mean_and_sample_std():
    groups = group_entries(three_seeds())
    assert len(groups) == 1
    stat = groups[0].stat(RANK_METRIC)
    assert stat.mean == pytest.approx(statistics.mean(RELS))
    assert stat.std == pytest.approx(statistics.stdev(RELS))  # sample std (n - 1)
    row = group_rows(groups)[0]
    assert row[:4] == ["1", "rnem", "5", "0,1,2 (n=3)"]
    assert row[4] == f"{statistics.mean(RELS):.3f} ± {statistics.stdev(RELS):.3f}"
    bce = [r["metrics"]["bce_last"] for r in three_seeds()]
    bce_cell = row[4 + [c.key for c in COLUMNS].index("bce_last")]
    assert bce_cell == f"{statistics.mean(bce):.2f} ± {statistics.stdev(bce):.2f}"
    single = group_rows(group_entries([entry("solo", 7, 0.5)]))[0]
    assert single[3] == "7" and single[4] == "0.500"  # one entry: no ± and no n


def test_groups_ranked_by_mean_and_split_by_how_they_were_trained():
    lucky = [entry("lucky", 0, 0.10), entry("lucky", 1, 0.90), entry("lucky", 2, 0.90)]  # best seed, worst mean
    steady = [entry("steady", 0, 0.50), entry("steady", 1, 0.52)]
    full = [entry("rnem", s, 0.45, task="balls4", preset="paper", k=5, shortened=False) for s in (0, 1)]
    short = [entry("rnem", 2, 0.30, task="balls4", preset="paper", k=5, shortened=True)]  # not a seed of the full runs
    trained_k8 = [entry("rnem", 3, 0.60, task="balls4", preset="paper", k=8, shortened=False)]
    groups = group_entries(lucky + steady + full + short + trained_k8)
    assert [(g.model_text, len(g.results)) for g in groups] == [
        ("rnem", 1), ("rnem", 2), ("steady", 2), ("rnem (trained K=8)", 1), ("lucky", 3)]
    assert [g.note for g in groups][:2] == ["shortened", ""]
    assert [row[0] for row in group_rows(groups)] == ["1", "2", "3", "4", "5"]


def test_an_outside_model_trained_elsewhere_says_so():
    """An outside model's self-stated training (write_predictions(training=...)) shows like ours:
    trained on another task with another K; no initialisation note (that is ours only)."""
    from rnem_bench.leaderboard.board import entry_name

    savi = [entry("savi", s, 0.4, task="balls678", k=5) for s in (0, 1)]
    for r in savi:
        r["model"].update(source="external", k=8)
    (group,) = group_entries(savi)
    assert group.model_text == "savi (trained K=5)" and group.note == "trained on balls678"
    assert entry_name(savi[0]).startswith("savi-k8-trainedk5-seed0-")


# ---------------------------------------------------------------------------------- terminal
def render_terminal(board: Path, width: int = 80, per_seed: bool = False) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    for table in rich_tables(board, "balls4", width=width, per_seed=per_seed):
        console.print(table)
    return console.export_text()


@pytest.mark.parametrize("per_seed", [False, True])
def test_an_80_column_terminal_never_cuts_a_number(tmp_path, per_seed):
    results = three_seeds(LONG_NAME) + three_seeds("rnn") + [entry("lstm", 0, 0.8123)]
    for r in results[3:6]:
        r["metrics"]["simulation_bce"] = [x * 100 for x in r["metrics"]["simulation_bce"]]  # 294112.50 and wider
    board = write_board(tmp_path, results)
    text = render_terminal(board, per_seed=per_seed)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in text
    groups = group_entries(results)
    shown_rows = group_rows(groups) + (seed_rows(groups) if per_seed else [])
    start = next(i for i, line in enumerate(lines) if line.startswith("not shown at width 80:"))
    footnote = " ".join(line.strip() for line in lines[start:])  # the caption may wrap
    hidden = footnote.removeprefix("not shown at width 80: ").split(";")[0].split(", ")
    shown = 0
    for i, column in enumerate(COLUMNS, start=4):
        if column.header in hidden:
            assert column.key != RANK_METRIC  # the rank metric is never dropped
            continue
        for row in shown_rows:
            assert row[i] in text, (column.header, row[i])  # every number in full, on one line
            shown += 1
    assert shown >= 2 * len(shown_rows)  # besides the rank metric, at least one more metric is shown
    assert "± " in text and "mean ± sample std over seeds" in text
    assert (text.count("seed 1") == 2) == per_seed  # --seeds: each seed's row under its mean


def test_a_wide_terminal_shows_every_column(tmp_path):
    board = write_board(tmp_path, three_seeds(LONG_NAME))
    text = render_terminal(board, width=250)
    assert "not shown" not in text and LONG_NAME in text
    assert all(cell in text for cell in group_rows(group_entries(three_seeds(LONG_NAME)))[0])


def test_cli_table_lists_seeds_on_request(tmp_path):
    board = write_board(tmp_path, three_seeds())
    plain = CliRunner().invoke(leaderboard, ["balls4", "--board", str(board)])
    seeds = CliRunner().invoke(leaderboard, ["balls4", "--board", str(board), "--seeds"])
    assert plain.exit_code == 0 and seeds.exit_code == 0, plain.output + seeds.output
    assert f"{RELS[0]:.3f}" not in plain.output and "0,1,2 (n=3)" in plain.output
    assert all(f"{rel:.3f}" in seeds.output for rel in RELS)
    assert (board / "README.md").exists() and (board / "index.html").exists()  # pages re-rendered


# ------------------------------------------------------------------------------ Markdown, HTML
def test_markdown_has_grouped_rows_and_every_seed_in_details(tmp_path):
    board = write_board(tmp_path, three_seeds() + [entry("solo", 4, 0.9)])
    md = markdown(board, "balls4")
    table = md[md.index("## balls4"):md.index("<details>")]
    details = md[md.index("<details>"):md.index("</details>")]
    assert f"| 1 | rnem | 5 | 0,1,2 (n=3) | {statistics.mean(RELS):.3f} ± {statistics.stdev(RELS):.3f} |" in table
    assert "| 2 | solo | 5 | 4 | 0.900 |" in table
    for seed, rel in enumerate(RELS):
        assert f"| 1 | rnem | 5 | {seed} | {rel:.3f} |" in details
    assert "solo" not in details  # a group of one entry already is its own row


def test_plots_show_each_seed_and_the_copy_baseline():
    groups = group_entries(three_seeds() + [entry("solo", 4, 0.9, sim_shift=-5.0)])
    found = {p.title: p for p in plots(groups)}
    try:
        relative = found["Relative losses"].figure.axes[0]
        dots = [tuple(xy) for c in relative.collections if c.get_offsets().shape[0] for xy in c.get_offsets()]
        for rel in (*RELS, 0.9):
            assert any(y == pytest.approx(rel) for _, y in dots), rel  # each seed's value is a dot
        sim = found["Simulation"].figure.axes[0]
        baseline = [line for line in sim.get_lines() if line.get_label() == SIM_BASELINE_LABEL]
        assert len(baseline) == 1
        assert list(baseline[0].get_ydata()) == valid_result()["metrics"]["baseline_simulation_bce"]
        assert "dashed black: the copy last observed frame baseline" in found["Simulation"].caption
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    curves = {c.label: c for c in simulation_curves(groups)}
    assert len(curves["rnem K=5"].seeds) == 3 and curves["solo K=5"].std is None
    per_step = [[r["metrics"]["simulation_bce"][t] for r in three_seeds()] for t in range(10)]
    assert curves["rnem K=5"].mean == pytest.approx([statistics.mean(v) for v in per_step])
    assert curves["rnem K=5"].std == pytest.approx([statistics.stdev(v) for v in per_step])


def test_without_a_per_step_baseline_no_baseline_is_claimed():
    results = three_seeds()
    for r in results:
        del r["metrics"]["baseline_simulation_bce"]
    groups = group_entries(results)
    assert simulation_baseline(groups) is None
    sim = next(p for p in plots(groups) if p.title == "Simulation")
    try:
        assert SIM_BASELINE_LABEL not in [line.get_label() for line in sim.figure.axes[0].get_lines()]
        assert "baseline" not in sim.caption
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


def test_html_page_has_grouped_rows_per_seed_details_and_plots(tmp_path):
    board = write_board(tmp_path, three_seeds())
    page = html_page(board)
    assert f"<td>{statistics.mean(RELS):.3f} ± {statistics.stdev(RELS):.3f}</td>" in page
    assert "Per-seed entries (3)" in page and all(f"<td>{rel:.3f}</td>" in page for rel in RELS)
    assert page.count("data:image/png;base64,") == 3  # relative losses, ARI, simulation


def test_mini_task_pages_show_the_grid_ari_floor():
    """On a task with pinned grid ARIs the page says what a fixed grid scores and the ARI plot draws
    the best one, so a model's ARI is read against a partition that knows nothing of objects."""
    from rnem_bench.leaderboard.board import GRID_ARI
    from rnem_bench.leaderboard.groups import task_groups
    from rnem_bench.leaderboard.pages import markdown

    board = Path(__file__).resolve().parents[1] / "leaderboards"
    assert "ARI reference: fixed grids (no objects) score ARI 2x2 0.666, 3x3 0.647, 4x4 0.512." in markdown(board, "mini-balls4")
    groups = task_groups("mini-balls4", board)
    ari = next(p for p in plots(groups, "mini-balls4") if p.title == "ARI")
    try:
        lines = [line for line in ari.figure.axes[0].get_lines() if line.get_label() == "best grid (2x2) on ARI"]
        assert len(lines) == 1 and lines[0].get_ydata()[0] == pytest.approx(GRID_ARI["mini-balls4"]["2x2"])
        assert "best fixed grid on the same score" in ari.caption
        assert not any("grid" in line.get_label() for p in plots(groups) if p.title == "ARI" for line in p.figure.axes[0].get_lines())
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


def test_boards_show_the_pinned_floors_and_the_hedge_proof_scores(tmp_path):
    """Every mini board lists the trivial predictors as pinned floor rows in the columns of the
    entries (BCE / copy, IoU, simulation, grids on ARI and video ARI); entries that carry video ARI
    and simulation IoU show them, and the simulation figure draws IoU beside BCE with the frozen
    last frame's IoU as a floor."""
    import json

    from rnem_bench.leaderboard.board import FLOORS, GRID_SCORES

    md = markdown(tmp_path, "mini-balls4")
    floors = FLOORS["mini-balls4"]
    blur = floors["blur-copy"]
    assert (f"|  | blur copy (floor) |  |  | {blur['bce_last'] / floors['copy']['bce_last']:.3f} | - | "
            f"{blur['bce_last']:.2f} |") in md
    assert f"|  | 2x2 grid (floor) |  |  | - | - | - | - | 0.666 | - | {GRID_SCORES['mini-balls4']['2x2']['ari_video']:.3f} |" in md
    assert "No entries yet." in md and "Rows marked (floor)" in md

    result = valid_result("rnem", seed=0, rel=0.4)
    result["metrics"].update(ari_video=0.71, iou_last=0.8, simulation_iou=[0.6 - 0.05 * t for t in range(10)])
    groups = group_entries([result])
    row = group_rows(groups)[0]
    assert "0.710" in row and "0.800" in row and f"{sum(result['metrics']['simulation_iou']) / 10:.3f}" in row
    sim = next(p for p in plots(groups, "mini-balls4") if p.title == "Simulation")
    try:
        iou_axis = sim.figure.axes[1]
        assert [round(y, 6) for y in iou_axis.get_lines()[0].get_ydata()] == [round(v, 6) for v in result["metrics"]["simulation_iou"]]
        frozen = [line for line in iou_axis.get_lines() if line.get_label().startswith("copy")]
        assert len(frozen) == 1 and frozen[0].get_ydata()[0] == pytest.approx(floors["copy"]["simulation_iou_mean"])
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    assert json.loads(json.dumps(result))  # plain JSON: the result stays a valid entry shape
