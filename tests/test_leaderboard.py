"""Leaderboard: valid entries accepted and rendered, every malformed field refused, the page opens."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from rnem_bench.errors import RnemBenchError
from rnem_bench.evaluation.evaluator import EvalConfig
from rnem_bench.leaderboard.board import COPY_BASELINES, entries, submit
from rnem_bench.leaderboard.pages import html_page, markdown, write_pages
from rnem_bench.tasks import get_task


def valid_result(model: str = "my-model", seed: int = 0, rel: float = 0.4) -> dict:
    task = get_task("balls4")
    steps = 30
    base = COPY_BASELINES["balls4"]
    return {
        "schema": "rnem-bench/result", "schema_version": 1, "task": "balls4",
        "dataset": {"fingerprint": task.recipe().fingerprint(), "split": "test", "n_sequences": 10_000},
        "model": {"name": model, "k": 5, "parameters": 1234, "source": "external"},
        "seeds": [seed],
        "metrics": {
            "n_sequences": 10_000, "steps": steps, "k": 5, "notes": [],
            "bce_last": base["bce_last"] * rel, "baseline_bce_last": base["bce_last"], "relative_bce_last": rel,
            "relational_bce_last": base["relational_bce_last"] / 2,
            "baseline_relational_bce_last": base["relational_bce_last"], "relative_relational_bce_last": 0.5,
            "relational_bce_last10": base["relational_bce_last10"] / 2,
            "baseline_relational_bce_last10": base["relational_bce_last10"], "relative_relational_bce_last10": 0.5,
            "bce_last10": base["bce_last10"] * 0.4, "baseline_bce_last10": base["bce_last10"], "relative_bce_last10": 0.4,
            "ari_mean": 0.8, "ari_last": 0.82, "ari_per_step": [0.8] * steps,
            "bce_per_step": [16.0] * steps, "baseline_bce_per_step": [40.0] * steps,
            "sim_observe": 10, "simulation_bce": [float(i) for i in range(10, 20)],
            "baseline_simulation_bce": [30.0] * 10,
        },
        "package_version": "0.1.0", "hardware": "test", "wall_time_s": 1.0, "created": "2026-11-24T10:00:00+00:00",
    }


def write(tmp_path: Path, obj, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_valid_entries_are_accepted_ranked_and_rendered(tmp_path):
    board = tmp_path / "board"
    submit(write(tmp_path, valid_result("slow-model", rel=0.7), "a.json"), board)
    submit(write(tmp_path, valid_result("fast-model", rel=0.3), "b.json"), board)
    ranked = entries(board, "balls4")
    assert [r["model"]["name"] for r in ranked] == ["fast-model", "slow-model"]
    md = markdown(board)
    assert md.index("fast-model") < md.index("slow-model") and "Contributing" in md
    pages = write_pages(board)
    assert all(p.stat().st_size > 0 for p in pages)
    assert "data:image/png;base64," in html_page(board)


def _set(path: str, value):
    def mutate(r):
        node = r
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        if value is KeyError:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return r
    return mutate


def _scaled_data(key: str, factor: float | None):
    """A self-consistent result (relative = loss / baseline) whose baseline is not the canonical
    data's: scaled by ``factor``, or left out with its loss and ratio when ``factor`` is None."""
    def mutate(r):
        m = r["metrics"]
        if factor is None:
            for name in (key, f"baseline_{key}", f"relative_{key}"):
                del m[name]
        else:
            m[key] *= factor
            m[f"baseline_{key}"] *= factor
        return r
    return mutate


@pytest.mark.parametrize(
    "mutate,field",
    [
        (_set("metrics.bce_last", KeyError), "metrics"),
        (_set("metrics.ari_mean", 1.5), "metrics.ari_mean"),
        (_set("metrics.bce_last", -1.0), "metrics.bce_last"),
        (_set("metrics.relative_bce_last", float("nan")), "metrics.relative_bce_last"),
        (_set("task", "balls9"), "task"),
        (_set("dataset.fingerprint", "0123456789abcdef"), "dataset.fingerprint"),
        (_set("dataset.fingerprint", "not-hex"), "dataset.fingerprint"),
        (_set("metrics.n_sequences", 100), "metrics.n_sequences"),
        (_set("dataset.split", "valid"), "dataset.split"),
        (_set("model.name", "../../etc/passwd"), "model.name"),
        (_set("model.k", 0), "model.k"),
        (_set("schema_version", 2), "schema_version"),
        (_set("seeds", []), "seeds"),
        (_set("metrics.surprise", 1), "metrics"),
        # a result is self-reported: its numbers must agree with each other and with the task
        (_set("metrics.relative_bce_last", 0.0), "metrics.relative_bce_last"),
        (_set("metrics.relative_relational_bce_last", 0.1), "metrics.relative_relational_bce_last"),
        (_set("metrics.steps", 24), "metrics.steps"),
        (_set("metrics.bce_per_step", [16.0] * 24), "metrics.bce_per_step"),
        (_set("metrics.simulation_bce", [0.1]), "metrics.simulation_bce"),
        (_set("metrics.sim_observe", 29), "metrics.simulation_bce"),
        (_set("wall_time_s", float("nan")), "wall_time_s"),
        (_set("model.parameters", float("inf")), "model.parameters"),
        (_set("seeds", list(range(100))), "seeds"),
        (_set("seeds", [10**400]), "seeds"),
        (_scaled_data("bce_last10", 0.9), "metrics.baseline_bce_last10"),  # consistent, but not the canonical data
        (_scaled_data("relational_bce_last", None), "metrics.baseline_relational_bce_last"),
    ],
)
def test_each_malformed_field_is_refused_and_nothing_written(tmp_path, mutate, field):
    board = tmp_path / "board"
    path = write(tmp_path, mutate(copy.deepcopy(valid_result())))
    with pytest.raises(RnemBenchError, match=f"'{field}"):
        submit(path, board)
    assert not board.exists() or not list(board.rglob("*.json"))


def test_not_json_and_duplicates_are_refused(tmp_path):
    board = tmp_path / "board"
    with pytest.raises(RnemBenchError, match="not valid JSON"):
        submit(write(tmp_path, "{oops", "bad.json"), board)
    with pytest.raises(RnemBenchError, match="not valid JSON"):  # RecursionError inside json
        submit(write(tmp_path, "[" * 100_000, "deep.json"), board)
    with pytest.raises(RnemBenchError, match="at most"):
        submit(write(tmp_path, " " * (2 << 20), "huge.json"), board)
    broken = valid_result()
    broken["metrics"]["bce_last"] = "INF"
    with pytest.raises(RnemBenchError, match="'metrics.bce_last': not a finite"):
        submit(write(tmp_path, json.dumps(broken).replace('"INF"', "1e999"), "inf.json"), board)
    path = write(tmp_path, valid_result())
    submit(path, board)
    with pytest.raises(RnemBenchError, match="duplicate"):
        submit(path, board)
    with pytest.raises(RnemBenchError, match="duplicate"):  # same model, K and seeds, other numbers
        submit(write(tmp_path, valid_result(rel=0.2), "again.json"), board)
    assert len(entries(board, "balls4")) == 1


def test_cli_submit_and_leaderboard(tmp_path):
    board = tmp_path / "board"
    r = run_cli("submit", str(write(tmp_path, valid_result())), "--board", str(board))
    assert r.returncode == 0, r.stderr
    r = run_cli("leaderboard", "balls4", "--format", "markdown", "--board", str(board))
    assert r.returncode == 0 and "my-model" in r.stdout
    r = run_cli("submit", str(write(tmp_path, _set("task", "nope")(valid_result()), "x.json")), "--board", str(board))
    assert r.returncode == 2 and r.stderr.startswith("error:") and "'task'" in r.stderr
    assert (board / "README.md").exists() and (board / "index.html").exists()


def test_rendered_page_opens_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    board = tmp_path / "board"
    submit(write(tmp_path, valid_result()), board)
    page = write_pages(board)[1]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    r = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "my-model" in r.stdout and "<table>" in r.stdout
    assert "Uncaught" not in r.stderr and ":ERROR:CONSOLE" not in r.stderr  # no page errors


@pytest.mark.slow
def test_pinned_copy_baselines_are_the_canonical_balls4_test_split(tmp_path):
    """Recompute balls4's pinned baselines from its canonical test split (generated here, ~20 s):
    they also guard against a generator change that alters the canonical data but not its recipe."""
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.data.store import open_dataset
    from rnem_bench.evaluation.evaluator import Evaluator

    task = get_task("balls4")
    ds = open_dataset(generate_dataset(task.recipe(splits={"test": task.splits["test"]}), tmp_path / "t.zarr",
                                       workers=2, progress=False))

    class CopyFrames:  # lazy predictions that copy frame t: only the baselines matter here
        shape = (task.splits["test"], 30, 64, 64)

        def __getitem__(self, rows):
            return ds.array("test", "features")[rows][:, :-1]

    metrics = Evaluator(ds, EvalConfig(batch_size=500)).eval({"prediction": CopyFrames()})
    for key, pinned in COPY_BASELINES["balls4"].items():
        assert metrics[f"baseline_{key}"] == pytest.approx(pinned, rel=1e-6), key
