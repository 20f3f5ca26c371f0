"""What a merge is made of (issue 32): in a trained R-NEM's late frames, which components *predict*
each ball (psi) and which one the E-step *assigns* it to (gamma).

For each late frame (steps 10-19, each scored against frame t + 1) and each true ball j (its pixels
in ``groups``, overlap excluded):

- ``covering``: the components k with psi_k > 0.5 on at least half of j's pixels (those that
  predict the ball);
- ``dominant``: argmax_k of j's pixel counts under argmax_k gamma (the evaluator's d_j); the ball is
  *merged* when its dominant component is also another ball's.

Printed per run, mean over (frame, ball): the share of balls covered by 0, 1, 2, 3+ components;
the share of balls merged; of the merged ones, the share whose dominant component covers them (it
predicts both balls: the merge is in the prediction) and the share covered by some *other*
component as well (the ball is predicted twice); and per frame the components that dominate a
ball and those that cover one.

And where merges come from: for each pair of balls of a sequence, whether they share their dominant
component at the first step (gamma of step 0, grouping frame 1: the E-step after a first prediction
made from the random initial gamma) and at the last step. If the last step's merges are the first
step's, kept, the model does not learn to separate the balls the random start put together.

    OMP_NUM_THREADS=1 python benchmarks/merging_anatomy.py RUNDIR [RUNDIR ...] --limit 256 \\
        --out benchmarks/results/merging/anatomy.txt
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from rnem_bench.data.store import open_dataset, resolve_dataset_path
from rnem_bench.dataset_format import OVERLAP
from rnem_bench.evaluation.results import cpu_model
from rnem_bench.models.fastpath import fast_layout
from rnem_bench.models.inference import Inference
from rnem_bench.protocol import SIM_OBSERVE
from rnem_bench.training.checkpoint import load_run


def anatomy(rundir: Path, limit: int, batch: int = 64) -> dict[str, float]:
    model, cfg = load_run(rundir)
    model = fast_layout(model, "cpu")
    model.decoder.use_reference(cfg.reference_decoder)
    ds = open_dataset(resolve_dataset_path("mini-balls4"))
    infer = Inference(model, cfg.k, cfg.noise, bf16=False)
    cover_hist = np.zeros(4)
    balls = merged = merged_covered = merged_twice = 0
    used = covering_comps = frames = 0
    pairs = {(a, b): 0 for a in (0, 1) for b in (0, 1)}  # (together at step 0, together at the last step) -> count
    for start in range(0, limit, batch):
        feats = torch.from_numpy(ds.array("test", "features")[start : start + batch])
        groups = torch.from_numpy(ds.array("test", "groups")[start : start + batch])[:, SIM_OBSERVE + 1 :]
        with torch.no_grad():
            out = infer.predict(feats, None, cfg.seed)
        first_last = _dominants(out["gamma"][:, [0, -1]].argmax(dim=2), torch.from_numpy(
            ds.array("test", "groups")[start : start + batch])[:, [1, -1]])  # per sequence: ({ball: d} at step 0, at the last)
        for early, late in first_last:
            balls_both = sorted(set(early) & set(late))
            for x, i in enumerate(balls_both):
                for j in balls_both[x + 1 :]:
                    pairs[(int(early[i] == early[j]), int(late[i] == late[j]))] += 1
        psi = out["psi"][:, SIM_OBSERVE:].float()            # (B, L, K, H, W) predictions of frames 11..20
        gamma = out["gamma"][:, SIM_OBSERVE:].float()
        labels = gamma.argmax(dim=2)                          # (B, L, H, W)
        K = psi.shape[2]
        B, L = groups.shape[:2]
        for b in range(B):
            for t in range(L):
                g = groups[b, t]
                ids = [j for j in torch.unique(g).tolist() if j not in (0, OVERLAP)]
                if not ids:
                    continue
                frames += 1
                dom, cov = {}, {}
                for j in ids:
                    mask = g == j
                    counts = torch.bincount(labels[b, t][mask], minlength=K)
                    dom[j] = int(counts.argmax())
                    on = (psi[b, t][:, mask] > 0.5).float().mean(dim=1)   # (K,) share of j's pixels each predicts
                    cov[j] = set(torch.nonzero(on >= 0.5).flatten().tolist())
                    cover_hist[min(len(cov[j]), 3)] += 1
                used += len(set(dom.values()))
                covering_comps += len(set().union(*cov.values()))
                for j in ids:
                    balls += 1
                    if any(dom[i] == dom[j] for i in ids if i != j):
                        merged += 1
                        merged_covered += dom[j] in cov[j]
                        merged_twice += len(cov[j] - {dom[j]}) > 0
    together_first = pairs[(1, 0)] + pairs[(1, 1)]
    apart_first = pairs[(0, 0)] + pairs[(0, 1)]
    return {"pairs": sum(pairs.values()), "together_first": together_first / max(sum(pairs.values()), 1),
            "kept_together": pairs[(1, 1)] / max(together_first, 1), "joined_later": pairs[(0, 1)] / max(apart_first, 1),
            "late_merges_from_first": pairs[(1, 1)] / max(pairs[(1, 1)] + pairs[(0, 1)], 1),
            "balls": balls, "cover0": cover_hist[0] / balls, "cover1": cover_hist[1] / balls,
            "cover2": cover_hist[2] / balls, "cover3+": cover_hist[3] / balls, "merged": merged / balls,
            "merged_dominant_predicts": merged_covered / max(merged, 1),
            "merged_predicted_by_another": merged_twice / max(merged, 1),
            "dominating_components": used / frames, "covering_components": covering_comps / frames}


def _dominants(labels: torch.Tensor, groups: torch.Tensor) -> list[tuple[dict[int, int], dict[int, int]]]:
    """labels, groups (B, 2, H, W) -> per sequence, for each of the two frames, {ball: dominant component}."""
    out = []
    for b in range(labels.shape[0]):
        frames = []
        for t in range(2):
            g, lab = groups[b, t], labels[b, t]
            frames.append({j: int(torch.bincount(lab[g == j]).argmax()) for j in torch.unique(g).tolist() if j not in (0, OVERLAP)})
        out.append(tuple(frames))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"merging anatomy: {a.limit} mini-balls4 test sequences, late steps {SIM_OBSERVE}-19; "
             f"{cpu_model() or platform.processor()}, one thread",
             "run | balls covered by 0 / 1 / 2 / 3+ components | merged | of merged: dominant predicts it / "
             "another predicts it too | per frame: components dominating a ball / covering a ball "
             "|| ball pairs: together at the first step | of those, still together at the last | of the pairs apart "
             "at first, together at the last | share of last-step merged pairs that were together at the first"]
    for run in a.runs:
        r = anatomy(run, a.limit)
        lines.append(f"{run} | {r['cover0']:.3f} / {r['cover1']:.3f} / {r['cover2']:.3f} / {r['cover3+']:.3f} | "
                     f"{r['merged']:.3f} | {r['merged_dominant_predicts']:.3f} / {r['merged_predicted_by_another']:.3f} | "
                     f"{r['dominating_components']:.2f} / {r['covering_components']:.2f} || "
                     f"{r['together_first']:.3f} | {r['kept_together']:.3f} | {r['joined_later']:.3f} | {r['late_merges_from_first']:.3f}")
        print(lines[-1], flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
