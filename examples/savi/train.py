"""Train unconditional SAVi on an rnem-bench task, and write its predictions for the Evaluator.

    python examples/savi/train.py --task mini-balls4 --seed 0 --out runs/savi-mini-balls4-k5-seed0 \\
        --updates 3125 --batch-size 16 --slots 5
    python examples/savi/predict.py runs/savi-mini-balls4-k5-seed0 --task mini-balls4     # see predict.py

From rnem-bench this uses only the public data API (open_dataset, resolve_dataset_path,
SequenceLoader) and write_predictions; scoring and submitting are the `rnem-bench score` and
`rnem-bench submit` commands. A run directory holds config.json, log.jsonl (training and
validation lines), ckpt_last.pt (everything needed to resume) and ckpt_best.pt (the weights with
the lowest validation loss). Checkpoints are plain state dicts, loaded with weights_only=True.

Ctrl-C (SIGINT) or SIGTERM finishes the current update, saves ckpt_last.pt and exits with
128 + the signal number (130 for SIGINT); `--resume` continues exactly where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from model import SAVi, SAViConfig, bce, bitflip, composite, parameter_count
from rnem_bench.data import Dataset, SequenceLoader, open_dataset, resolve_dataset_path
from rnem_bench.evaluation import write_predictions

MODEL_NAME = "savi"
SIM_OBSERVE, SIM_STEPS = 10, 10   # the leaderboard's simulation: see frames 0..9, predict frames 11..20


@dataclass
class TrainConfig:
    task: str                       # a task name or a dataset path (train and valid splits)
    out: str
    seed: int = 0
    updates: int = 3125             # the CPU tier's budget: 5 epochs of 10,000 sequences at batch 16
    batch_size: int = 16
    slots: int = 5                  # K during training
    window: int = 6                 # frames per training clip (the reference trains on clips of 6)
    lr: float = 2e-4                # reference: 2e-4 peak
    warmup: float = 0.025           # fraction of the updates (reference: 2,500 of 100,000)
    clip: float = 0.05              # global gradient norm (reference: 0.05)
    noise: float = 0.2              # bit-flip probability of the input frames (the task's); targets are clean
    recon_weight: float = 1.0       # BCE of frame t from the corrected slots (SAVi's objective)
    next_weight: float = 1.0        # BCE of frame t + 1 from the predicted slots (added here)
    valid_limit: int | None = None  # validation sequences (None: the whole valid split)
    valid_batch_size: int = 32
    save_every: int = 100           # updates between ckpt_last.pt saves
    log_every: int = 25
    model: dict[str, Any] = field(default_factory=lambda: asdict(SAViConfig()))


# ------------------------------------------------------------------------------------ data
def open_task(name_or_path: str) -> Dataset:
    """A task's canonical dataset (from `rnem-bench generate --task`) or a dataset path."""
    return open_dataset(resolve_dataset_path(name_or_path))


def clip_batch(frames: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """A random window of ``window`` + 1 frames of each sequence: (B, T+1, H, W) -> (B, window+1, H, W)
    (the inputs are frames 0..window-1 of the clip; the last frame is only a next-frame target)."""
    B, F_ = frames.shape[:2]
    length = min(window + 1, F_)
    starts = torch.randint(0, F_ - length + 1, (B,), generator=gen)
    idx = starts[:, None] + torch.arange(length)[None]                     # (B, length)
    return frames[torch.arange(B)[:, None], idx]


# ------------------------------------------------------------------------------------ loss
def sequence_losses(model: SAVi, frames: torch.Tensor, k: int, noise: float,
                    gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """frames (B, L+1, H, W) in {0, 1}. The model sees noisy frames 0..L-1 and is scored on clean ones:
    recon (B, L): BCE of frame t decoded from the corrected slots c_t;
    next  (B, L): BCE of frame t + 1 decoded from the predicted slots p_t = predictor(c_t)."""
    inputs = bitflip(frames[:, :-1], noise, gen)
    out = model(inputs, k, gen)
    values, alphas = model.decode(out["corrected"])        # (B, L, K, H, W)
    recon = bce(values, alphas, frames[:, :-1])
    values, alphas = model.decode(out["predicted"])
    nxt = bce(values, alphas, frames[:, 1:])
    return recon, nxt


def lr_factor(update: int, total: int, warmup: int) -> float:
    """Linear warm-up from 0 to the peak over ``warmup`` updates, then cosine decay to 0 at ``total``
    (the reference's optax.warmup_cosine_decay_schedule)."""
    if update < warmup:
        return update / warmup
    progress = (update - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def validate(model: SAVi, ds: Dataset, cfg: TrainConfig) -> dict[str, float]:
    """Mean per-frame BCEs on whole validation sequences, with fixed noise and slot draws (the same
    every time, so epochs compare on equal terms). ``valid_loss`` picks the best checkpoint."""
    model.eval()
    gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    features = ds.array("valid", "features")
    n = len(features) if cfg.valid_limit is None else min(cfg.valid_limit, len(features))
    sums, count = np.zeros(2), 0
    for start in range(0, n, cfg.valid_batch_size):
        frames = torch.from_numpy(features[start:min(n, start + cfg.valid_batch_size)]).float()
        recon, nxt = sequence_losses(model, frames, cfg.slots, cfg.noise, gen)
        sums += [recon.mean(1).sum().item(), nxt.mean(1).sum().item()]
        count += len(frames)
    model.train()
    recon, nxt = (float(v) for v in sums / count)
    return {"valid_loss": cfg.recon_weight * recon + cfg.next_weight * nxt, "valid_recon": recon, "valid_next": nxt}


# ---------------------------------------------------------------------------- checkpoints
def save(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # atomic: a kill mid-save leaves the previous checkpoint intact


def load_model(run: str | Path, which: str = "best") -> tuple[SAVi, dict[str, Any]]:
    """The model of a run directory (``best`` or ``last`` checkpoint) and the run's config dict."""
    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    ckpt = torch.load(run / f"ckpt_{which}.pt", map_location="cpu", weights_only=True)
    model = SAVi(SAViConfig(**cfg["model"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop finishes its update, saves and exits with 128 + signum."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------- train
def train(cfg: TrainConfig, resume: bool = False,
          after_update: Callable[[int], None] | None = None) -> int:
    """Train (or resume) the run in ``cfg.out``; returns the exit status (0, or 128 + signal).
    ``after_update(update)`` is called after every update (progress bars, tests)."""
    out = Path(cfg.out)
    if resume:
        cfg = TrainConfig(**{**json.loads((out / "config.json").read_text()), "out": cfg.out})
    elif (out / "ckpt_last.pt").exists():
        sys.exit(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    ds = open_task(cfg.task)
    cfg.model["image_size"] = ds.array("train", "features").shape[-1]
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    torch.manual_seed(cfg.seed)
    model = SAVi(SAViConfig(**cfg.model))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    warmup = max(1, round(cfg.warmup * cfg.updates))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda u: lr_factor(u, cfg.updates, warmup))
    gen = torch.Generator().manual_seed(cfg.seed)  # clip starts, input noise, slot draws
    loader = SequenceLoader(ds, "train", batch_size=cfg.batch_size, seed=cfg.seed, threads=1)
    # train_seconds: wall time spent training, summed over resumed segments (the result's training record)
    state = {"update": 0, "epoch": 0, "batch_in_epoch": 0, "best_valid": math.inf, "validated_at": -1,
             "train_seconds": 0.0}
    if resume:
        ckpt = torch.load(out / "ckpt_last.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        gen.set_state(ckpt["generator"])
        state.update(ckpt["state"])
        print(f"resumed {out} at update {state['update']}", flush=True)
    print(f"SAVi: {parameter_count(model):,} parameters; K={cfg.slots}, {len(loader)} updates per epoch",
          flush=True)

    t_start, seconds_before = time.perf_counter(), state["train_seconds"]

    def save_last() -> None:
        state["train_seconds"] = round(seconds_before + time.perf_counter() - t_start, 3)
        save(out / "ckpt_last.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                    "state": dict(state), "config": asdict(cfg)})

    def log(entry: dict[str, Any]) -> None:
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def validate_and_keep_best() -> None:
        t0 = time.perf_counter()
        metrics = validate(model, ds, cfg)
        state["validated_at"] = state["update"]
        best = metrics["valid_loss"] < state["best_valid"]
        if best:
            state["best_valid"] = metrics["valid_loss"]
            save(out / "ckpt_best.pt", {"model": model.state_dict(), "update": state["update"],
                                        "valid": metrics, "config": asdict(cfg)})
        log({"update": state["update"], "epoch": state["epoch"], **metrics, "best": best,
             "seconds": round(time.perf_counter() - t0, 2)})
        print(f"update {state['update']}: valid loss {metrics['valid_loss']:.2f} (recon {metrics['valid_recon']:.2f}, "
              f"next {metrics['valid_next']:.2f}){'  best' if best else ''}", flush=True)

    model.train()
    with StopRequest() as stop:
        t_log, since_log = time.perf_counter(), 0
        while state["update"] < cfg.updates and stop.signum is None:
            loader.set_epoch(state["epoch"])
            for batch in itertools.islice(iter(loader), state["batch_in_epoch"], None):
                frames = clip_batch(batch["features"].float(), cfg.window, gen)
                recon, nxt = sequence_losses(model, frames, cfg.slots, cfg.noise, gen)
                # the reference's reduction: summed over pixels and frames, averaged over the batch
                loss = (cfg.recon_weight * recon.sum(1) + cfg.next_weight * nxt.sum(1)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                opt.step()
                sched.step()
                state["update"] += 1
                state["batch_in_epoch"] += 1
                u = state["update"]
                since_log += 1
                if u % cfg.log_every == 0 or u == cfg.updates:
                    dt, t_log, since_log = (time.perf_counter() - t_log) / since_log, time.perf_counter(), 0
                    log({"update": u, "epoch": state["epoch"], "loss": loss.item(), "recon": recon.mean().item(),
                         "next": nxt.mean().item(), "grad_norm": grad_norm.item(), "lr": sched.get_last_lr()[0],
                         "seconds_per_update": round(dt, 4)})
                    print(f"update {u}/{cfg.updates}  loss {loss.item():.1f}  recon/frame {recon.mean().item():.1f}  "
                          f"next/frame {nxt.mean().item():.1f}  {dt:.2f} s/update", flush=True)
                if after_update is not None:
                    after_update(u)
                if u % cfg.save_every == 0:
                    save_last()
                if stop.signum is not None or u >= cfg.updates:
                    break
            if state["batch_in_epoch"] >= len(loader):  # the epoch is complete
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                validate_and_keep_best()
                save_last()
        if stop.signum is not None:
            save_last()
            print(f"stopped by signal {stop.signum} at update {state['update']}; continue with --resume", flush=True)
            return 128 + stop.signum
        if state["validated_at"] != state["update"]:
            validate_and_keep_best()
        save_last()
    return 0


# -------------------------------------------------------------------------------- predict
@torch.no_grad()
def predict_split(model: SAVi, ds: Dataset, k: int, noise: float, seed: int, split: str = "test",
                  batch_size: int = 32, limit: int | None = None) -> dict[str, np.ndarray]:
    """The arrays the Evaluator scores, for ``split`` in order (T = frames - 1 steps):

    prediction (N, T, H, W): step t's composite frame, decoded from the predicted slots p_t, which
        have seen frames 0..t only (frame t + 1 never enters the model);
    gamma (N, T, K, H, W): the masks of that same decoding (sum to 1 over K);
    simulation (N, 10, H, W): correct on frames 0..9, then the predictor alone, decoded at each step:
        frames 11..20 (p_9 is the state for frame 10; one more predictor step gives frame 11).
    The inputs get the bit-flip noise the run was trained with (as the reference models are scored)."""
    features = ds.array(split, "features")
    n = len(features) if limit is None else min(limit, len(features))
    N, F_, H, W = n, *features.shape[1:]
    T = F_ - 1
    sim = SIM_STEPS if SIM_OBSERVE + SIM_STEPS <= T else 0
    out = {"prediction": np.empty((N, T, H, W), np.float32),
           "gamma": np.empty((N, T, k, H, W), np.float16),     # argmax is all ARI reads: half the bytes
           "simulation": np.empty((N, sim, H, W), np.float32)}
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        frames = torch.from_numpy(features[start:min(n, start + batch_size)]).float()
        inputs = bitflip(frames[:, :T], noise, gen)                 # frames 0..T-1: the last frame is never seen
        states = model(inputs, k, gen)["predicted"]                 # (B, T, K, D): p_t predicts frame t + 1
        frame, masks = composite(*model.decode(states))
        stop = start + len(frames)
        out["prediction"][start:stop] = frame.numpy()
        out["gamma"][start:stop] = masks.numpy()
        if sim:
            rolled = model.rollout(states[:, SIM_OBSERVE - 1], sim)  # from p_9: states for frames 11..20
            out["simulation"][start:stop] = composite(*model.decode(rolled))[0].numpy()
    if not sim:
        del out["simulation"]
    return out


def write_run_predictions(run: str | Path, task: str, dataset: str | None = None, k: int | None = None,
                          split: str = "test", which: str = "best", noise: float | None = None,
                          batch_size: int = 32, limit: int | None = None, out: str | Path | None = None) -> Path:
    """Predict ``task``'s ``split`` with a run's checkpoint and write a predictions store for
    `rnem-bench score` (default RUN/predictions-TASK.zarr). K defaults to the run's."""
    model, cfg = load_model(run, which)
    k = k or cfg["slots"]
    training = {"task": cfg["task"], "k": cfg["slots"], "batch_size": cfg["batch_size"], "updates": cfg["updates"]}
    last = torch.load(Path(run) / "ckpt_last.pt", map_location="cpu", weights_only=True)["state"]
    if "train_seconds" in last:  # runs from before 2026-12-07 did not record it
        training["wall_time_s"] = last["train_seconds"]
    ds = open_task(dataset or task)
    arrays = predict_split(model, ds, k, cfg["noise"] if noise is None else noise, seed=cfg["seed"],
                           split=split, batch_size=batch_size, limit=limit)
    path = Path(out) if out else Path(run) / f"predictions-{task}.zarr"
    return write_predictions(
        path, model=MODEL_NAME, task=task, sim_observe=SIM_OBSERVE, split=None if split == "test" else split,
        seeds=[int(cfg["seed"])], parameters=parameter_count(model),
        training=training,
        description=f"unconditional SAVi (Kipf et al. 2022), K={k}, trained on {cfg['task']} "
                    f"for {cfg['updates']} updates (examples/savi)", **arrays)


# ------------------------------------------------------------------------------------ CLI
def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, int]:
    d = TrainConfig(task="", out="")
    p = argparse.ArgumentParser(description="Train unconditional SAVi on an rnem-bench task.")
    p.add_argument("--task", required=True, help="task name (its canonical dataset) or a dataset path")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (its saved config is used)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    for name in ("seed", "updates", "batch_size", "slots", "window", "lr", "warmup", "clip", "noise",
                 "recon_weight", "next_weight", "valid_limit", "valid_batch_size", "save_every", "log_every"):
        default = getattr(d, name)
        kind = int if name in ("valid_limit",) else type(default)
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=f"default {default}")
    p.add_argument("--model", type=json.loads, default={},
                   help='SAViConfig overrides as JSON, e.g. \'{"slot_size": 32}\'')
    a = p.parse_args(argv)
    fields = {name: getattr(a, name) for name in TrainConfig.__dataclass_fields__ if name not in ("model",)}
    cfg = TrainConfig(**{**fields, "model": {**asdict(SAViConfig()), **a.model}})
    return cfg, a.resume, a.threads


def main(argv: list[str] | None = None) -> int:
    cfg, resume, threads = parse_args(argv)
    torch.set_num_threads(threads)
    return train(cfg, resume)


if __name__ == "__main__":
    sys.exit(main())
