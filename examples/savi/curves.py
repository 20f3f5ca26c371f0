"""Training curves of one or more SAVi runs (their log.jsonl), drawn to one PNG.

    python examples/savi/curves.py runs/savi-mini-balls4-k5-seed0 runs/savi-mini-balls4-k5-seed1 \
        --out savi-curves.png

Left: BCE per frame of frame t decoded from the corrected slots (SAVi's own objective); right: of
frame t + 1 decoded from the predicted slots (the term added here, and what the board scores).
Thin lines are training batches (a running mean over 5 log lines); dots are whole-valid-split
validations, the filled ones kept as ckpt_best.pt.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_log(run: Path) -> tuple[list[dict], list[dict]]:
    """(training lines, validation lines) of a run's log.jsonl."""
    train, valid = [], []
    for line in (run / "log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        (valid if "valid_loss" in entry else train).append(entry)
    return train, valid


def running_mean(values: list[float], width: int = 5) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if len(v) < width:
        return v
    return np.convolve(v, np.ones(width) / width, mode="valid")


def plot(runs: list[Path], out: Path, title: str | None = None) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for i, run in enumerate(runs):
        train, valid = read_log(run)
        color = f"C{i}"
        for ax, key in zip(axes, ("recon", "next")):
            if train:
                updates = [e["update"] for e in train]
                smooth = running_mean([e[key] for e in train])
                ax.plot(updates[len(updates) - len(smooth):], smooth, color=color, lw=0.8, alpha=0.7,
                        label=run.name)
            for e in valid:
                ax.plot(e["update"], e[f"valid_{key}"], "o", color=color, ms=5,
                        mfc=color if e.get("best") else "white")
    axes[0].set_title("frame t from the corrected slots")
    axes[1].set_title("frame t + 1 from the predicted slots")
    for ax in axes:
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("BCE per frame (nats, summed over pixels)")
    axes[1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title)
    return save(fig, out)


def save(fig: plt.Figure, out: Path, dpi: int = 120) -> Path:
    """Lay out, write and close a figure (its folder made if needed)."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Draw SAVi runs' training curves from their log.jsonl.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (from train.py)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    missing = [str(r) for r in a.runs if not (r / "log.jsonl").is_file()]
    if missing:
        p.error(f"no log.jsonl in: {', '.join(missing)}")
    print(plot(a.runs, a.out, a.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
