"""The merging study (issue 32): why R-NEM's grouping on the CPU tier gets worse as it learns.

One-factor arms from the tier recipe of R-NEM K=5 on mini-balls4 (batch 16, Adam 1e-3, noise 0.2,
theta 250, original initialisation, seed 0), each trained for the tier's first two epochs (1,250 of
its 3,125 updates: grouping peaks when a run leaves the symmetric plateau, within its first epoch,
and the merging that follows is in place a few hundred updates later) with validation probes every
100 updates (``rnem-bench run --probe-every 100``: loss, ARI, merge / split rates on 256 validation
sequences), then its best checkpoint (validation loss) scored on mini-balls4's test split (K=5) and
mini-balls678's (K=8):

    python benchmarks/merging_study.py train k5-ref            # resumable; --seed S for other seeds
    python benchmarks/merging_study.py evaluate k5-ref
    python benchmarks/merging_study.py report                  # table + curves into benchmarks/results/merging/

Run dirs go to ``runs/merging/ARM`` (``ARM-seedS`` for seeds other than 0). Train with
``OMP_NUM_THREADS=1`` to run two arms side by side on 2 cores. ``report`` copies each run's
config.json, log.jsonl, probes.jsonl and result files into ``benchmarks/results/merging/ARM/`` and
writes ``table.md`` and ``curves.png`` there; it reads whatever has landed, so it can run at any time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "merging"
OUT = REPO / "benchmarks" / "results" / "merging"
RECIPE = ["--dataset", "mini-balls4", "--batch-size", "16", "--epochs", "2", "--patience", "5", "--k", "5"]
DATA_64 = REPO / "data" / "mini-balls4-64px.zarr"  # mini-balls4's recipe and seed, rendered at 64x64 (make_64px)


@dataclass(frozen=True)
class Arm:
    name: str
    factor: str         # what changes from the tier recipe
    args: tuple[str, ...]  # rnem-bench run flags after the recipe's (a later flag wins)
    test: tuple[tuple[str, ...], ...] = (("--task", "mini-balls4"), ("--task", "mini-balls678", "--k", "8"))


ARMS = {a.name: a for a in [
    Arm("k5-ref", "none: the tier recipe (theta 250, noise 0.2, lr 1e-3, 32x32)", ()),
    Arm("k5-theta100", "theta 100 units instead of 250 (the paper's remedy for overcapacity)", ("--hidden", "100")),
    Arm("k5-theta50", "theta 50 units: a component too small, if the paper is right, to model two balls", ("--hidden", "50")),
    Arm("k5-noise03", "input bit-flip noise 0.3 instead of 0.2 (the paper's other remedy)", ("--noise", "0.3")),
    Arm("k5-lr25e-5", "Adam lr 2.5e-4 instead of 1e-3 (batch 16 at the paper's lr: ~4x its step per sample)", ("--lr", "2.5e-4")),
    Arm("k8-epoch1", "K=8, its first epoch only (the learning curve of K=8)", ("--k", "8", "--epochs", "1")),
    Arm("k5-64px", "64x64 frames (the paper's resolution) of the same sequences; probes every 50 updates",
        ("--dataset", str(DATA_64), "--probe-every", "50"),
        test=(("--dataset", str(DATA_64), "--out", "RUNDIR/result-mini-balls4-64px.json"),)),
]}
TEST_TASKS = ("mini-balls4", "mini-balls678", "mini-balls4-64px")  # result-TASK.json files the report reads


def rundir(arm: str, seed: int) -> Path:
    return RUNS / (arm if seed == 0 else f"{arm}-seed{seed}")


def cli(*args: str) -> None:
    exe = Path(sys.executable).with_name("rnem-bench")
    subprocess.run([str(exe), *args], check=True)


def train(arm: Arm, seed: int, epochs: int | None = None) -> None:
    out = rundir(arm.name, seed)
    resume = ["--resume"] if (out / "last.pt").exists() else []
    more = ["--epochs", str(epochs)] if epochs else []
    cli("run", "rnem", *RECIPE, "--probe-every", "100", *arm.args, *more, "--seed", str(seed), "--quiet", "--out", str(out), *resume)


def make_64px() -> None:
    """mini-balls4's recipe (seed, splits, chunks) at 64x64: the same trajectories, 4x the pixels."""
    if not (DATA_64 / "zarr.json").exists() or not _complete(DATA_64):
        cli("generate", "balls", "--n-balls", "4", "--steps", "20", "--image-size", "64", "--seed", "0",
            "--n-seq", "10000/1000/2000", "--workers", "1", "--quiet", "--out", str(DATA_64))


def _complete(path: Path) -> bool:
    from rnem_bench.data.store import open_dataset

    try:
        open_dataset(path)
        return True
    except Exception:
        return False


def evaluate(arm: Arm, seed: int) -> None:
    out = rundir(arm.name, seed)
    for args in arm.test:
        cli("evaluate", str(out), *(a.replace("RUNDIR", str(out)) for a in args))


def _row(name: str, run: Path) -> dict[str, Any]:
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()] if (run / "log.jsonl").exists() else []
    probes = [json.loads(x) for x in (run / "probes.jsonl").read_text().splitlines() if x.strip()] if (run / "probes.jsonl").exists() else []
    results = {}
    for task in TEST_TASKS:
        path = run / f"result-{task}.json"
        if path.exists():
            results[task] = json.loads(path.read_text())["metrics"]
    return {"name": name, "log": log, "probes": probes, "results": results}


def _fmt(v: Any, spec: str = "{:.3f}") -> str:
    return "-" if v is None else spec.format(v)


def report() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in sorted(p for p in RUNS.iterdir() if p.is_dir() and (p / "config.json").exists()):
        dest = OUT / run.name
        dest.mkdir(exist_ok=True)
        for f in ["config.json", "log.jsonl", "probes.jsonl", "summary.json", *(f"result-{t}.json" for t in TEST_TASKS)]:
            if (run / f).exists():
                shutil.copy2(run / f, dest / f)
        rows.append(_row(run.name, run))
    lines = ["| arm | updates | best epoch | ARI mean | ARI last | video ARI | merge rate | merge apart | split rate "
             "| pair prec. / recall | BCE / copy | sim. IoU | 6-8 balls: ARI | merge rate | BCE / copy |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        m = r["results"].get("mini-balls4") or r["results"].get("mini-balls4-64px")
        x = r["results"].get("mini-balls678")
        updates = r["log"][-1]["updates"] if r["log"] else (r["probes"][-1]["updates"] if r["probes"] else 0)
        best = min(r["log"], key=lambda e: e["valid_loss"])["epoch"] if r["log"] else None
        if m is None:
            lines.append(f"| {r['name']} | {updates} | {_fmt(best, '{}')} | (not scored yet) |" + " |" * 11)
            continue
        sim = float(np.mean(m["simulation_iou"])) if m.get("simulation_iou") else None
        lines.append(
            f"| {r['name']} | {updates} | {best} | {_fmt(m['ari_mean'])} | {_fmt(m['ari_last'])} | {_fmt(m.get('ari_video'))} "
            f"| {_fmt(m.get('merge_rate'))} | {_fmt(m.get('merge_rate_apart'))} | {_fmt(m.get('split_rate'))} "
            f"| {_fmt(m.get('pair_precision'))} / {_fmt(m.get('pair_recall'))} | {_fmt(m['relative_bce_last'])} | {_fmt(sim)} "
            f"| {_fmt(x and x['ari_mean'])} | {_fmt(x and x.get('merge_rate'))} | {_fmt(x and x['relative_bce_last'])} |")
    curve = ["", "Validation probes (256 sequences, late steps 10-19) every 100 updates: "
             "updates: ARI mean / last / video, merge rate (apart), split rate, valid loss", ""]
    for r in rows:
        curve.append(f"{r['name']}:")
        for p in r["probes"]:
            curve.append(f"  {p['updates']:>5}: ARI {_fmt(p.get('valid_ari_mean'))} / {_fmt(p.get('valid_ari_last'))} / "
                         f"{_fmt(p.get('valid_ari_video'))}, merge {_fmt(p.get('valid_merge_rate'))} "
                         f"({_fmt(p.get('valid_merge_rate_apart'))}), split {_fmt(p.get('valid_split_rate'))}, "
                         f"loss {p['valid_loss']:.1f}")
    (OUT / "table.md").write_text("\n".join(lines + curve) + "\n")
    _plot(rows, OUT / "curves.png")
    print("\n".join(lines))
    print(f"wrote {OUT / 'table.md'} and {OUT / 'curves.png'}")


def _plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("valid_ari_mean", "validation ARI (mean over steps)"), ("valid_merge_rate", "merge rate (late steps)"),
              ("valid_split_rate", "split rate (late steps)")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, (key, title) in zip(axes, panels):
        for r in rows:
            xy = [(p["updates"], p[key]) for p in r["probes"] if key in p]
            if xy:
                ax.plot(*zip(*xy), marker="o", ms=2, label=r["name"])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("updates")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "evaluate", "report"])
    parser.add_argument("arm", nargs="?", choices=sorted(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="train: epochs instead of the study's 2")
    a = parser.parse_args()
    if a.command == "report":
        return report()
    if a.arm is None:
        parser.error(f"{a.command} needs an ARM ({', '.join(ARMS)})")
    if a.command == "train" and a.arm == "k5-64px":
        make_64px()
    if a.command == "train":
        train(ARMS[a.arm], a.seed, a.epochs)
    else:
        evaluate(ARMS[a.arm], a.seed)


if __name__ == "__main__":
    main()
