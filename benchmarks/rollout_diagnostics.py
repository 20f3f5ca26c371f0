"""Why does R-NEM's simulation fade? (claim C6, issue 20.) Per simulated step of trained runs'
rollouts: how much of the true objects' mass the prediction keeps, how bright it stays, and IoU,
under the leaderboard's protocol and under variants that each change one thing.

The leaderboard's rollout (``Inference.rollout``) observes frames 0-9 and feeds its own soft total
prediction sum_k gamma_k psi_k back for 10 steps (bit-flip noise on every input, gamma recomputed
against max_k psi_k > 0.1). The variants:

- ``original``: the original code's loop, whose last observed E-step sees the real frame 10;
- ``binary``: the fed-back prediction thresholded at 0.5 before the noise, i.e. an input like the
  binary frames the model was trained on (not the paper's protocol: a diagnostic of whether the
  model's dynamics or its soft, out-of-distribution input makes the rollout fade).

Columns per simulated step s = 1..10 (frame 10 + s), mean over sequences: ``mass`` = sum of the
prediction / sum of the true frame; ``on`` = the share of the prediction's mass on the true frame's
foreground pixels; ``peak`` = the brightest predicted pixel; ``IoU`` of prediction > 0.5 against
the truth (the leaderboard's simulation IoU). The frozen last observed frame is the reference.

    OMP_NUM_THREADS=1 python benchmarks/rollout_diagnostics.py RUNDIR [RUNDIR ...] --limit 256 \\
        --out benchmarks/results/rollout_diagnostics_mini.txt
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from rnem_bench.data.loader import SequenceLoader
from rnem_bench.data.store import open_dataset, resolve_dataset_path
from rnem_bench.protocol import SIM_OBSERVE, SIM_STEPS
from rnem_bench.evaluation.results import cpu_model
from rnem_bench.models.fastpath import fast_layout
from rnem_bench.models.inference import SIM_THRESHOLD, Inference
from rnem_bench.models.nem import e_step, flip, flip_mask, init_gamma
from rnem_bench.training.checkpoint import load_run

VARIANTS = ("protocol", "original", "binary")


@torch.no_grad()
def rollout(model, k: int, noise: float, x: torch.Tensor, variant: str, seed: int) -> torch.Tensor:
    """x (B, T+1, H, W) real frames -> (B, SIM_STEPS, H, W) predictions of frames 11..20."""
    B, _, H, W = x.shape
    gen = torch.Generator().manual_seed(seed)
    state, psi, gamma = model.initial_state(init_gamma(B, k, H, gen))
    frame, out = x[:, 0], []
    for t in range(SIM_OBSERVE + SIM_STEPS):
        noisy = flip(frame, flip_mask((B, H, W), noise, gen)) if noise > 0 else frame
        state, psi, _ = model.transition(noisy, state, psi, gamma)
        # The original's last observed step (t = 9) still sees the real frame 10.
        sees_real = t + 1 < SIM_OBSERVE or (variant == "original" and t + 1 == SIM_OBSERVE)
        target = x[:, t + 1] if sees_real else (psi.max(dim=1).values > SIM_THRESHOLD).float()
        gamma = e_step(psi, target)
        total = (gamma * psi).sum(dim=1)                       # prediction of frame t + 1
        if t + 1 < SIM_OBSERVE:
            frame = x[:, t + 1]
        else:
            frame = (total > 0.5).float() if variant == "binary" else total
        if t >= SIM_OBSERVE:
            out.append(total)
    return torch.stack(out, dim=1)


def stats(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per simulated step, mean over sequences: mass, on, peak, IoU (see the module's docstring)."""
    dims = (-2, -1)
    true_mass = truth.sum(dims).clamp_min(1)
    mass = pred.sum(dims)
    on = (pred * truth).sum(dims) / mass.clamp_min(1e-6)
    hard = pred > 0.5
    inter, union = (hard & (truth > 0)).sum(dims), (hard | (truth > 0)).sum(dims)
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter, dtype=torch.float))
    return {"mass": (mass / true_mass).mean(0), "on": on.mean(0), "peak": pred.amax(dims).mean(0), "IoU": iou.float().mean(0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rundirs", nargs="+", type=Path)
    ap.add_argument("--task", default="mini-balls4")
    ap.add_argument("--limit", type=int, default=256, help="test sequences (the first N)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    ds = open_dataset(resolve_dataset_path(args.task))
    loader = SequenceLoader(ds, "test", batch_size=64, shuffle=False, drop_last=False, limit=args.limit)
    x = torch.cat([b["features"] for b in loader]).float()            # (N, T+1, H, W)
    truth = x[:, SIM_OBSERVE + 1: SIM_OBSERVE + 1 + SIM_STEPS]
    cpu = cpu_model() or platform.processor()
    lines = [f"# rollout diagnostics on {args.task} (first {x.shape[0]} test sequences; {cpu}, "
             f"{torch.get_num_threads()} thread(s))", "",
             "per simulated step 1..10: mass = predicted / true pixel mass, on = share of the predicted mass "
             "on true foreground, peak = brightest pixel, IoU = (prediction > 0.5) vs truth", ""]

    def block(name: str, pred: torch.Tensor) -> None:
        s = stats(pred, truth)
        lines.append(f"## {name}")
        for key, v in s.items():
            lines.append(f"  {key:5s} " + " ".join(f"{a:.3f}" for a in v.tolist()) + f"   (mean {v.mean():.3f})")

    block("frozen last observed frame (frame 10)", x[:, SIM_OBSERVE: SIM_OBSERVE + 1].expand_as(truth))
    for rundir in args.rundirs:
        model, cfg = load_run(rundir)
        model = fast_layout(model, "cpu")
        model.decoder.use_reference(cfg.reference_decoder)
        k = model.resolve_k(cfg.k)
        for variant in VARIANTS:
            if k == 1 and variant == "original":
                continue  # K = 1: gamma is 1 whatever the E-step sees
            pred = torch.cat([rollout(model, k, cfg.noise, xb, variant, cfg.seed)
                              for xb in x.split(64)]).clamp(0, 1)
            block(f"{cfg.model} K={k} seed {cfg.seed} ({cfg.init} init), {variant}  [{rundir}]", pred)
        # The loop above against the leaderboard's own rollout (other noise draws, same protocol).
        ref = torch.cat([Inference(model, k, cfg.noise).rollout(xb, SIM_OBSERVE, SIM_STEPS, seed=cfg.seed)
                         for xb in x.split(64)]).clamp(0, 1)
        lines.append(f"  (Inference.rollout, the leaderboard's: IoU mean {stats(ref, truth)['IoU'].mean():.3f})")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
