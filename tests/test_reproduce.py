"""`rnem-bench reproduce`: baseline recipes, training orchestration on a tiny budget, the
comparison table and the paper's claims, and (once the evaluator exists) the end-to-end run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnem_bench.cli import cli
from rnem_bench.errors import RnemBenchError
from rnem_bench.reproduce.claims import check_claims
from rnem_bench.reproduce.jobs import Job, select_jobs
from rnem_bench.reproduce.reference_runs import BASELINES_DIR, ReferenceRun, load_reference_runs, runs_for
from rnem_bench.reproduce.report import aggregate, print_table, write_summary
from rnem_bench.reproduce.scoring import Outcome


def test_baselines_cover_the_papers_comparison():
    recipes = {name: r for name, r in load_reference_runs().items() if not name.startswith("mini-")}
    assert {(r.model, r.task, r.k) for r in recipes.values()} == {
        ("rnem", "balls4", 5), ("rnem", "balls4", 8), ("rnem-noatt", "balls4", 5), ("rnn-em", "balls4", 5),
        ("rnn", "balls4", 1), ("lstm", "balls4", 1), ("rnem", "curtain", 5), ("rnn", "curtain", 1),
        ("lstm", "curtain", 1), ("rnem", "invaders", 4),
    }
    for r in recipes.values():
        if r.task == "balls4":  # the same checkpoints extrapolate to 6-8 balls (K=8 for mixtures)
            assert ("balls678", 1 if r.k == 1 else 8) in {(e.task, e.k) for e in r.evaluate}
    inv = recipes["invaders-rnem"]
    assert inv.noise == 0.02 and inv.n_actions == 6
    assert recipes["curtain-rnem"].paper["curtain"] == {"bce": 46.22, "relational_bce": 2.33}
    assert {r.name for r in runs_for("balls678", recipes)} == {r.name for r in recipes.values() if r.task == "balls4"}


def test_bad_recipe_files_are_refused(tmp_path):
    (tmp_path / "x.toml").write_text('model = "rnem"\ntask = "balls4"\nk = 5\nnoise = 0.2\nepochs_cap = 3\n')
    with pytest.raises(RnemBenchError, match="unknown field.*epochs_cap"):
        load_reference_runs(tmp_path)
    (tmp_path / "x.toml").write_text('model = "rnem"\ntask = "balls9"\nk = 5\nnoise = 0.2\n')
    with pytest.raises(RnemBenchError, match="unknown task 'balls9'"):
        load_reference_runs(tmp_path)
    with pytest.raises(RnemBenchError, match=r"--models: gru"):
        select_jobs("balls4", tmp_path, "gru", 1, BASELINES_DIR)


def test_only_seeds_picks_the_seeds_not_yet_run(tmp_path):
    baselines = tmp_path / "baselines"  # the shipped reference runs, one of them listing seed 0 only
    baselines.mkdir()
    for name in ("mini-balls4-rnem-k5", "mini-balls4-rnn"):
        text = (BASELINES_DIR / f"{name}.toml").read_text()
        (baselines / f"{name}.toml").write_text(text.replace("seeds = [0, 1, 2]", "seeds = [0]") if "rnn" in name else text)
    jobs = select_jobs(None, tmp_path, "mini-balls4-rnem-k5,mini-balls4-rnn", None, baselines, "mini", (1, 2))
    assert [(j.run.name, j.seed) for j in jobs] == [("mini-balls4-rnem-k5", 1), ("mini-balls4-rnem-k5", 2)]
    assert jobs[0].rundir == tmp_path / "mini-balls4-rnem-k5" / "seed1"
    with pytest.raises(RnemBenchError, match=r"--seed 7: no chosen reference run lists that seed"):
        select_jobs(None, tmp_path, "mini-balls4-rnn", None, BASELINES_DIR, "mini", (7,))


def test_every_mini_reference_run_lists_three_seeds():
    runs = [r for r in load_reference_runs().values() if r.task.startswith("mini-")]
    assert len(runs) == 9 and all(r.seeds == (0, 1, 2) for r in runs)


def _outcome(recipe: ReferenceRun, task: str, seed: int, full: bool = True, **metrics) -> Outcome:
    job = Job(recipe, seed, Path("runs") / recipe.name / f"seed{seed}")
    return Outcome(job, task, recipe.k, metrics, Path("r.json"), full)


def test_table_and_claims_from_scored_runs(tmp_path, capsys):
    recipes = load_reference_runs()
    outcomes = [
        _outcome(recipes["balls4-rnem-k5"], "balls4", 0, ari=0.78, relative_bce=0.30),
        _outcome(recipes["balls4-rnem-k5"], "balls4", 1, ari=0.82, relative_bce=0.34),
        _outcome(recipes["balls4-rnn-em"], "balls4", 0, ari=0.60, relative_bce=0.50),
        _outcome(recipes["balls4-lstm"], "balls4", 0, full=False, relative_bce=0.25),
    ]
    rows = aggregate(outcomes)
    assert rows[("balls4-rnem-k5", "balls4")]["stats"]["ari"][0] == pytest.approx(0.80)
    verdicts = {v.claim.id: v for v in check_claims(rows)}
    assert verdicts["C2"].status == "holds" and "R-NEM 0.8 ± 0.028" in verdicts["C2"].numbers
    assert {i for i, v in verdicts.items() if v.status == "not measured"} == {"C1", "C3", "C4", "C5", "C6", "C7"}
    assert verdicts["C1"].numbers == "needs balls4-rnem-k5 on balls4"  # it has no BCE yet
    print_table(rows, "paper")
    text = capsys.readouterr().out
    assert "balls4-rnem-k5" in text and "0.8 ± 0.028 | 0.8" in text  # ours beside the paper's 0.8
    assert "shortened" in text and "not reproductions" in text and "C7" in text
    path = write_summary(tmp_path, "balls4", "paper", {}, rows)
    report = json.loads(path.read_text())
    assert report["rows"][1]["paper"] == {"ari": 0.8}
    assert report["claims"][1] == {"id": "C2", "claim": verdicts["C2"].claim.text, "verdict": "holds",
                                   "numbers": verdicts["C2"].numbers}


def _tier_rows(**overrides) -> dict:
    """Aggregated mini-tier rows in which every claim of the paper holds; ``overrides`` changes
    one metric: ``{"balls4-lstm/balls678/relative_bce": 0.5}``."""
    recipes = load_reference_runs()
    table = {  # (model, test task) -> metrics
        ("rnem-k5", "balls4"): dict(ari=0.8, bce=100, relational_bce=10, relative_bce=0.4, simulation_bce=50),
        ("rnem-k8", "balls4"): dict(ari=0.85, bce=101, relational_bce=9, relative_bce=0.41),
        ("rnem-noatt", "balls4"): dict(ari=0.8, bce=102, relational_bce=10.5, relative_bce=0.405),
        ("rnn-em", "balls4"): dict(ari=0.6, bce=150, relational_bce=15, relative_bce=0.6, simulation_bce=70),
        ("rnn", "balls4"): dict(bce=200, relational_bce=20, relative_bce=0.8, simulation_bce=90),
        ("lstm", "balls4"): dict(bce=180, relational_bce=18, relative_bce=0.5),
        ("rnem-k5", "balls678"): dict(relative_bce=0.5),
        ("rnem-noatt", "balls678"): dict(relative_bce=0.6),
        ("rnn-em", "balls678"): dict(relative_bce=0.7),
        ("rnn", "balls678"): dict(relative_bce=0.9),
        ("lstm", "balls678"): dict(relative_bce=0.9),
        ("rnem", "curtain"): dict(bce=40, relational_bce=2),
        ("lstm", "curtain"): dict(bce=50, relational_bce=3),
        ("rnn", "curtain"): dict(bce=90, relational_bce=4),
    }
    outcomes = []
    for (model, task), metrics in table.items():
        name = f"mini-{'curtain' if task == 'curtain' else 'balls4'}-{model}"
        for key, value in overrides.items():
            r, t, m = key.split("/")
            if (r, t) == (name.removeprefix("mini-"), task):
                metrics = {**metrics, m: value}
        outcomes.append(_outcome(recipes[name], f"mini-{task}", 0, **metrics))
    return aggregate(outcomes)


def test_the_papers_claims_on_the_mini_tier():
    verdicts = check_claims(_tier_rows(), tier="mini")
    assert [v.claim.id for v in verdicts] == [f"C{i}" for i in range(1, 8)]
    assert all(v.status == "holds" for v in verdicts), [(v.claim.id, v.numbers) for v in verdicts]
    c4 = verdicts[3].numbers
    assert "LSTM 1.8x" in c4 and "R-NEM 1.25x" in c4  # relative BCE growth from 4 to 6-8 balls
    # Each claim fails when its numbers say so.
    fails = {
        "C1": {"balls4-lstm/balls4/relational_bce": 9.0},
        "C2": {"balls4-rnem-k5/balls4/ari": 0.65},
        "C3": {"balls4-rnem-k8/balls4/ari": 0.7},
        "C4": {"balls4-rnn/balls678/relative_bce": 2.0},          # the RNN degrades most
        "C5": {"balls4-rnem-noatt/balls4/relative_bce": 0.45},   # more than 5% worse on 4 balls
        "C6": {"balls4-rnn-em/balls4/simulation_bce": 95},
        "C7": {"curtain-lstm/curtain/bce": 95},
    }
    for claim, override in fails.items():
        status = {v.claim.id: v.status for v in check_claims(_tier_rows(**override), tier="mini")}
        assert status[claim] == "does not hold" and list(status.values()).count("holds") == 6, (claim, status)
    assert check_claims(_tier_rows(), tier="paper")[0].status == "not measured"  # other names
    # A broken order reads as broken: each pair is joined by how it really compares.
    c6 = check_claims(_tier_rows(**fails["C6"]), tier="mini")[5].numbers
    assert c6.startswith("simulation_bce: R-NEM 50 < RNN-EM 95 >= RNN 90; ")
    # IoU beside BCE (here not scored: the rows predate it), the pinned floors, the seed counts
    assert "simulation_iou: R-NEM not scored, RNN-EM not scored, RNN not scored" in c6
    assert "frozen last frame IoU 0.369" in c6 and c6.endswith("[seeds: R-NEM 1, RNN-EM 1, RNN 1]")
    # C5 says by how much no-att is worse on 4 balls, beside the bar it is held to.
    c5 = check_claims(_tier_rows(**fails["C5"]), tier="mini")[4].numbers
    assert re.search(r"\(no-att \+\d+\.\d%; as good means at most \+5%\)", c5), c5


def test_claims_flag_orders_the_seeds_do_not_settle():
    """A pair whose means differ by less than the larger seed sd is named: the verdict follows the
    means, the text says the seeds do not settle that pair."""
    recipes = load_reference_runs()
    rows = _tier_rows()
    two_seeds = aggregate([_outcome(recipes["mini-balls4-rnem-k5"], "mini-balls4", s, simulation_bce=v) for s, v in ((0, 40), (1, 80))])
    rows[("mini-balls4-rnem-k5", "mini-balls4")]["stats"]["simulation_bce"] = two_seeds[("mini-balls4-rnem-k5", "mini-balls4")]["stats"]["simulation_bce"]
    rows[("mini-balls4-rnem-k5", "mini-balls4")]["seeds"] = [0, 1]
    rows[("mini-balls4-rnem-k5", "mini-balls4")]["values"]["simulation_bce"] = [40, 80]
    c6 = {v.claim.id: v for v in check_claims(rows, tier="mini")}["C6"]
    assert c6.status == "holds"   # mean 60 < RNN-EM 70 < RNN 90
    assert "(within one seed sd: R-NEM vs RNN-EM);" in c6.numbers   # sd 28 > 70 - 60
    assert c6.numbers.endswith("[seeds: R-NEM 2, RNN-EM 1, RNN 1]")
    assert "seed sd" not in {v.claim.id: v for v in check_claims(_tier_rows(), tier="mini")}["C6"].numbers


def test_reproduce_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch):
    """Tiny data, one epoch, one seed: train (no evaluation), then rerun: finished runs are kept,
    each (recipe, test set) gets a schema-valid result file, and the table is printed."""
    from rnem_bench.evaluation.results import check_schema
    from rnem_bench.leaderboard.board import submit

    monkeypatch.setenv("RNEM_BENCH_DATA", str(tmp_path / "data"))
    args = ["reproduce", "balls4", "--preset", "tiny", "--seeds", "1", "--models", "balls4-rnem-k5,rnn",
            "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]
    first = CliRunner().invoke(cli, [*args, "--no-evaluate"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "balls4-rnem-k5 seed 0: max_epochs after 1 epochs" in first.output
    for name in ("balls4-rnem-k5", "balls4-rnn"):
        summary = json.loads((tmp_path / "out" / name / "seed0" / "summary.json").read_text())
        assert summary["finished"] and summary["epochs"] == 1
    last = tmp_path / "out" / "balls4-rnn" / "seed0" / "last.pt"
    mtime = last.stat().st_mtime

    done = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert last.stat().st_mtime == mtime  # finished runs are not retrained
    files = sorted((tmp_path / "out" / "results").glob("*/*.json"))
    assert [f"{f.parent.name}/{f.name}" for f in files] == [
        "balls4/balls4-rnem-k5-seed0.json", "balls4/balls4-rnn-seed0.json",
        "balls678/balls4-rnem-k5-seed0.json", "balls678/balls4-rnn-seed0.json"]
    for f in files:
        result = json.loads(f.read_text())
        check_schema(result, "result-v1", str(f))            # what `submit` checks first
        assert result["task"] == f.parent.name and result["training"]["shortened"] is True
        # `submit` reads it and passes the schema; only the fingerprint rule refuses it, rightly:
        # tiny data is not the task's canonical dataset.
        with pytest.raises(RnemBenchError, match="field 'dataset.fingerprint'"):
            submit(f, board=tmp_path / "board")
        assert not (tmp_path / "board").exists()
    k8 = json.loads((tmp_path / "out" / "results" / "balls678" / "balls4-rnem-k5-seed0.json").read_text())
    assert k8["model"]["k"] == 8 and k8["metrics"]["ari_mean"] is not None
    assert "ours (mean ± sd over seeds) | paper" in done.output and "0.8" in done.output  # paper's ARI beside ours
    assert "not reproductions" in done.output
    report = json.loads((tmp_path / "out" / "results" / "reproduce-balls4.json").read_text())
    assert len(report["rows"]) == 4 and all(r["ours"]["bce"]["mean"] > 0 for r in report["rows"])


def test_publish_submits_once_and_keeps_the_runs_config_and_log(tmp_path):
    from test_leaderboard import valid_result

    from rnem_bench.leaderboard.board import entries
    from rnem_bench.reproduce.scoring import publish

    rundir = tmp_path / "run"
    rundir.mkdir()
    (rundir / "config.json").write_text('{"model": "rnem"}\n')
    (rundir / "log.jsonl").write_text('{"epoch": 1}\n')
    board = tmp_path / "board"
    for trained_k in (5, 8):  # same model, test K and seed; trained with another K: two entries
        result = valid_result("rnem", rel=trained_k / 20) | {"training": {"task": "balls4", "preset": "paper", "k": trained_k}}
        path = tmp_path / f"k{trained_k}.json"
        path.write_text(json.dumps(result))
        publish(path, rundir, board)
        publish(path, rundir, board)  # again: already there, nothing changes
    assert [e["training"]["k"] for e in entries(board, "balls4")] == [5, 8]
    names = sorted(p.name.rsplit("-", 1)[0] for p in (board / "balls4").glob("*.json"))
    assert names == ["rnem-k5-seed0", "rnem-k5-trainedk8-seed0"]
    kept = sorted(p.relative_to(board).as_posix() for p in (board / "balls4" / "runs").rglob("*.*"))
    assert len(kept) == 4 and all(p.endswith(("config.json", "log.jsonl")) for p in kept)


def test_reproduce_a_tier_on_a_tiny_budget(tmp_path, monkeypatch):
    """`reproduce --tier mini`: every recipe of the tier (here two), each scored right after its
    training, and the claims table with what is not measured yet."""
    monkeypatch.setenv("RNEM_BENCH_DATA", str(tmp_path / "data"))
    args = ["reproduce", "--tier", "mini", "--preset", "tiny", "--seeds", "1", "--models",
            "mini-balls4-rnn,mini-curtain-rnn", "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    order = [line for line in r.output.splitlines() if line.startswith("== ")]
    assert [line.split(" -> ")[0] for line in order] == [
        "== train mini-balls4-rnn seed 0", "== evaluate mini-balls4-rnn seed 0 on mini-balls4 at K=1",
        "== evaluate mini-balls4-rnn seed 0 on mini-balls678 at K=1",
        "== train mini-curtain-rnn seed 0", "== evaluate mini-curtain-rnn seed 0 on mini-curtain at K=1"]
    assert "C7" in r.output and "not measured" in r.output
    report = json.loads((tmp_path / "out" / "results" / "reproduce-tier-mini.json").read_text())
    assert {c["verdict"] for c in report["claims"]} == {"not measured"} and len(report["rows"]) == 3
    again = CliRunner().invoke(cli, args, catch_exceptions=False)  # finished and scored: nothing is redone
    assert "== evaluate" not in again.output and again.output.count("(kept ") == 3
    # --report trains nothing: scores what is finished, lists what is not, writes the claims table
    more = ["--models", "mini-balls4-rnn,mini-curtain-rnn,mini-balls4-lstm"]
    report_args = [a for a in args if a not in ("--models", "mini-balls4-rnn,mini-curtain-rnn")] + more
    md = tmp_path / "claims.md"
    r = CliRunner().invoke(cli, report_args + ["--report", "--claims-markdown", str(md)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "== train " not in r.output and "== not finished: mini-balls4-lstm seed 0" in r.output
    table = md.read_text().splitlines()
    assert table[0] == "| claim | verdict | our numbers |" and len(table) == 2 + 7
    assert all("**not measured**" in line for line in table[2:])
    # --check-against: each fresh metric beside the committed seed 0 of the same recipe (one seed
    # committed here, so no spread to judge it by: the tiny preset is no reproduction anyway)
    board = Path(__file__).resolve().parents[1] / "leaderboards"
    r = CliRunner().invoke(cli, args + ["--report", "--check-against", str(board)], catch_exceptions=False)
    checks = [line for line in r.output.splitlines() if line.startswith("mini-curtain-rnn ")]
    assert checks and all(line.split()[2] == "0" for line in checks), r.output
    assert "reproduction: " in r.output.splitlines()[-1]
    with pytest.raises(RnemBenchError, match="name a TASK or a --tier"):
        CliRunner().invoke(cli, ["reproduce"], catch_exceptions=False)


def test_claims_can_be_judged_from_the_committed_board(tmp_path):
    """board_outcomes reads our entries back from a leaderboard folder, matched to their recipe and
    seed; a submission from outside (another source) is not mistaken for a reference run."""
    import json
    import shutil

    from rnem_bench.reproduce.scoring import board_outcomes

    committed = Path(__file__).resolve().parents[1] / "leaderboards" / "mini-balls4"
    entry = next(p for p in committed.glob("rnem-k5-seed0-*.json")  # the PyTorch-init one (no 'init' recorded)
                 if "init" not in json.loads(p.read_text())["training"])
    (tmp_path / "mini-balls4").mkdir()
    shutil.copy(entry, tmp_path / "mini-balls4" / entry.name)
    outside = json.loads(entry.read_text())
    outside["model"]["source"] = "external"
    (tmp_path / "mini-balls4" / "theirs.json").write_text(json.dumps(outside))

    jobs = select_jobs(None, tmp_path, "mini-balls4-rnem-k5", None, BASELINES_DIR, "mini")
    # the committed entry predates the 'init' field: it was trained from PyTorch's initialisation
    assert board_outcomes(jobs, tmp_path) == []  # the default judges the original code's init only
    outcomes = board_outcomes(jobs, tmp_path, init="pytorch")
    assert [(o.job.run.name, o.job.seed, o.task, o.k) for o in outcomes] == [("mini-balls4-rnem-k5", 0, "mini-balls4", 5)]
    assert outcomes[0].metrics["ari"] == pytest.approx(json.loads(entry.read_text())["metrics"]["ari_mean"])
    # an entry trained from the original init is told apart (a new seed 0 is no duplicate of the old)
    original = json.loads(entry.read_text())
    original["training"]["init"] = "original"
    original["metrics"]["ari_mean"] = 0.5
    (tmp_path / "mini-balls4" / "original.json").write_text(json.dumps(original))
    assert [o.metrics["ari"] for o in board_outcomes(jobs, tmp_path)] == [0.5]


def test_reproduction_is_judged_against_the_seed_spread():
    """A rerun of seed 0 reproduces a metric when it differs from the committed seed 0 by no more
    than the spread (max - min) of the committed seeds; one committed seed gives no spread."""
    from rnem_bench.reproduce.check import NO_ENTRY, NO_SPREAD, OUTSIDE, WITHIN, check_reproduction, format_checks

    recipes = load_reference_runs()
    rnem, lstm = recipes["mini-balls4-rnem-k5"], recipes["mini-balls4-lstm"]
    board = [_outcome(rnem, "mini-balls4", s, ari=a, bce=b) for s, a, b in ((0, 0.63, 95.0), (1, 0.60, 97.0), (2, 0.66, 96.0))]
    board.append(_outcome(lstm, "mini-balls4", 0, bce=118.0))
    fresh = [_outcome(rnem, "mini-balls4", 0, ari=0.58, bce=96.5),   # ari off by 0.05 <= 0.06; bce by 1.5 <= 2
             _outcome(rnem, "mini-balls4", 2, ari=0.56),              # off by 0.10 > 0.06
             _outcome(lstm, "mini-balls4", 0, bce=118.2),             # one committed seed: no spread
             _outcome(lstm, "mini-balls4", 1, bce=118.2)]             # seed 1 not committed
    got = {(c.run, c.seed, c.metric): c for c in check_reproduction(fresh, board)}
    assert got[("mini-balls4-rnem-k5", 0, "ari")].verdict == WITHIN
    assert got[("mini-balls4-rnem-k5", 0, "ari")].spread == pytest.approx(0.06)
    assert got[("mini-balls4-rnem-k5", 0, "bce")].verdict == WITHIN
    assert got[("mini-balls4-rnem-k5", 2, "ari")].verdict == OUTSIDE
    assert got[("mini-balls4-lstm", 0, "bce")].verdict == NO_SPREAD
    assert got[("mini-balls4-lstm", 1, "bce")].verdict == NO_ENTRY
    lines = format_checks(list(got.values()))
    assert lines[-1].startswith("reproduction: 2 of 3 judged metrics within the seed-to-seed spread; 2 not judged")


def test_check_against_refuses_what_it_cannot_compare(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["reproduce", "--tier", "mini", "--check-against", str(tmp_path / "nope")])
    assert isinstance(missing.exception, RnemBenchError) and "no leaderboard folder" in str(missing.exception)
    both = runner.invoke(cli, ["reproduce", "--tier", "mini", "--check-against", str(tmp_path), "--from-board", str(tmp_path)])
    assert isinstance(both.exception, RnemBenchError) and "cannot be combined" in str(both.exception)


def test_claims_read_video_ari_and_simulation_iou_against_their_floors():
    """C2 and C3 show video ARI beside the best grid on the same score, C6 the simulation IoU of
    the three models beside BCE, with the pinned floors; the verdicts stay the paper's metrics."""
    from rnem_bench.leaderboard.board import GRID_SCORES

    scored = {"balls4-rnem-k5/balls4/ari_video": 0.72, "balls4-rnem-k8/balls4/ari_video": 0.75}
    scored.update({f"balls4-{m}/balls4/simulation_iou": v for m, v in (("rnem-k5", 0.2), ("rnn-em", 0.25), ("rnn", 0.3))})
    verdicts = {v.claim.id: v for v in check_claims(_tier_rows(**scored), tier="mini")}
    grid = GRID_SCORES["mini-balls4"]["2x2"]["ari_video"]
    assert f"ari_video: R-NEM 0.72 (a fixed 2x2 grid, which knows no objects, scores {grid:.3g})" in verdicts["C2"].numbers
    assert "ari_video: R-NEM K=8 0.75 vs R-NEM 0.72 (a fixed 2x2 grid" in verdicts["C3"].numbers
    assert "simulation_iou: R-NEM 0.2, RNN-EM 0.25, RNN 0.3; floors:" in verdicts["C6"].numbers
    assert [v.status for v in verdicts.values()].count("holds") == 7  # judged on the paper's metrics
