"""The training loop: Adam on the N-EM loss, early stopping on the validation loss, checkpoints
every epoch, exact resume.

Determinism: the model is initialised from ``config.seed``; each epoch's batch order comes from
the loader's ``(seed, epoch)`` shuffle and its input noise and initial gammas from a generator
seeded with ``(seed, epoch, rank)``. So a run resumed from ``last.pt`` (saved at an epoch
boundary with the optimizer, early-stopping state and RNG states) redoes exactly what the
killed run would have done, and ends where an uninterrupted run ends.

Multi-GPU (DDP): launch the same command under torchrun, e.g.::

    torchrun --standalone --nproc_per_node 4 --no-python rnem-bench run rnem --dataset balls4 --batch-size 16

Each process takes ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` from torchrun, uses GPU LOCAL_RANK,
reads a disjoint share of the data's chunks and a batch of ``--batch-size`` sequences per step
(the effective batch is batch_size x world size; pass ``--batch-size 16`` on 4 GPUs to keep the
paper's 64). Only rank 0 writes the run dir; validation losses are averaged over all ranks so
every rank takes the same early-stopping decision.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rnem_bench.data.loader import SequenceLoader
from rnem_bench.data.store import open_dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.models import build_model
from rnem_bench.models.nem import bitflip, init_gamma
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.config import RunConfig


@dataclass
class Progress:
    """Training state that lives across epochs (saved in last.pt)."""

    epoch: int = 0                      # epochs completed
    best_valid: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0                 # epochs since the validation loss last improved
    seconds: float = 0.0                # training wall time over all sessions
    history: list[dict[str, Any]] = field(default_factory=list)

    def early_stopped(self, patience: int) -> bool:
        return self.bad_epochs >= patience


@dataclass(frozen=True)
class DistEnv:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @classmethod
    def from_environ(cls) -> "DistEnv":
        return cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0


class TrainingDiverged(RnemBenchError):
    pass


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers (independent streams for epochs, ranks, purposes)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def sequence_loss(
    model: torch.nn.Module, frames: torch.Tensor, k: int, noise: float, gen: torch.Generator,
    actions: torch.Tensor | None = None, bf16: bool = False,
) -> torch.Tensor:
    """The training objective of one batch: frames (B, T+1, H, W) 0/1 on the model's device.
    Inputs are frames 0..T-1 with bit-flip noise, targets the clean frames 1..T."""
    x = frames.float()
    B, _, H, _ = x.shape
    inputs = bitflip(x[:, :-1], noise, gen)
    gamma0 = init_gamma(B, k, H, gen, device=x.device)
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    with autocast:
        return model(inputs, x[:, 1:], gamma0, actions)["loss"]


class Trainer:
    """Trains ``config`` into ``rundir``. Use ``fit()``; a fresh or resumed run alike."""

    def __init__(self, config: RunConfig, rundir: str | Path, progress: bool = True):
        config.validate()
        self.config = config
        self.rundir = Path(rundir)
        self.env = DistEnv.from_environ()
        self.show_progress = progress and self.env.main
        if self.env.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if config.device.startswith("cuda") else "gloo")
        self.device = torch.device(config.device)
        if self.device.type == "cuda":
            if self.env.world_size > 1:
                self.device = torch.device("cuda", self.env.local_rank)
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

        self.ds = open_dataset(config.dataset)
        if self.ds.fingerprint != config.dataset_fingerprint:
            raise RnemBenchError(f"{config.dataset} has fingerprint {self.ds.fingerprint}, the run was made on {config.dataset_fingerprint}")
        torch.manual_seed(config.seed)
        self.net = build_model(config.model, config.image_size, **config.model_options).to(self.device)
        self.k = self.net.resolve_k(config.k)
        if config.compile:
            self.net.compile_step(dynamic=False)
        self.model: torch.nn.Module = self.net
        if self.env.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.state = Progress()
        arrays = ("features", "actions") if config.use_actions else ("features",)
        common = dict(arrays=arrays, batch_size=config.batch_size, seed=config.seed,
                      rank=self.env.rank, world_size=self.env.world_size)
        self.train_loader = SequenceLoader(self.ds, "train", shuffle=True, drop_last=True, limit=config.train_limit, **common)
        self.valid_loader = SequenceLoader(self.ds, "valid", shuffle=False, drop_last=False, limit=config.valid_limit, **common)

    # ------------------------------------------------------------------ checkpoint / resume
    def _checkpoint(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        s = self.state
        return {
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng,
            "epoch": s.epoch, "best_valid": s.best_valid, "best_epoch": s.best_epoch,
            "bad_epochs": s.bad_epochs, "seconds": s.seconds, "history": s.history,
        }

    def restore(self) -> None:
        """Continue from ``last.pt`` (all ranks read it)."""
        path = self.rundir / ckpt.LAST
        saved = ckpt.read_checkpoint(path)
        keys = ("model", "optimizer", "rng", "epoch", "best_valid", "best_epoch", "bad_epochs", "seconds", "history")
        if not isinstance(saved, dict) or any(key not in saved for key in keys):
            raise RnemBenchError(f"{path} is not a training checkpoint of rnem-bench (it lacks {', '.join(keys)})")
        try:
            self.net.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["rng"]["torch"])
            if "cuda" in saved["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            raise RnemBenchError(f"{path} does not fit this run's model: {type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}") from None
        self.state = Progress(saved["epoch"], saved["best_valid"], saved["best_epoch"], saved["bad_epochs"],
                              saved["seconds"], list(saved["history"]))

    # ----------------------------------------------------------------------------- one batch
    def _loss(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> tuple[torch.Tensor, int]:
        c = self.config
        x = batch["features"][:, : c.steps + 1].to(self.device, non_blocking=True)  # (B, T+1, H, W) uint8
        actions = batch["actions"][:, : c.steps].to(self.device).long() if c.use_actions else None
        return sequence_loss(self.model, x, self.k, c.noise, gen, actions, bf16=c.bf16), x.shape[0]

    def _allreduce(self, *values: float) -> list[float]:
        if self.env.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def _n_batches(self, loader: SequenceLoader) -> int:
        """Batches per rank this epoch: the fewest any rank has, so DDP ranks stay in step."""
        n = torch.tensor([len(loader)], device=self.device)
        if self.env.world_size > 1:
            dist.all_reduce(n, op=dist.ReduceOp.MIN)
        return int(n.item())

    # ----------------------------------------------------------------------------- one epoch
    def train_epoch(self, epoch: int) -> tuple[float, int]:
        self.model.train()
        self.train_loader.set_epoch(epoch)
        gen = torch.Generator(self.device).manual_seed(_seed(self.config.seed, epoch, self.env.rank, 0))
        n_batches = self._n_batches(self.train_loader)
        sync_every = 1 if self.device.type == "cpu" else 10  # .item() stalls the GPU queue
        total, seen = torch.zeros((), dtype=torch.float64, device=self.device), 0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch",
                   disable=not self.show_progress, leave=False, dynamic_ncols=True)
        for i, batch in enumerate(self.train_loader):
            if i >= n_batches:
                break
            loss, b = self._loss(batch, gen)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * b
            seen += b
            if (i + 1) % sync_every == 0 or i + 1 == n_batches:
                value = loss.item()
                if not math.isfinite(value) or not math.isfinite(total.item()):
                    bar.close()
                    raise TrainingDiverged(self._diverged_message(epoch, i, value))
                bar.set_postfix(loss=f"{value:.2f}")
            bar.update(1)
        bar.close()
        if seen == 0:
            raise RnemBenchError(f"no training batch: {self.train_loader.n} sequences < batch size {self.config.batch_size}")
        total_sum, count = self._allreduce(total.item(), seen)
        return total_sum / count, int(count)

    def _diverged_message(self, epoch: int, batch: int, value: float) -> str:
        kept = (f"last good checkpoint: {self.rundir / ckpt.LAST} (epoch {self.state.epoch})"
                if self.state.epoch else "no checkpoint was written")
        return f"training loss became {value} at epoch {epoch + 1}, batch {batch + 1}; run stopped ({kept}); try a lower --lr"

    @torch.no_grad()
    def valid_loss(self) -> float:
        self.model.eval()
        # The same noise every epoch so that losses are comparable across epochs.
        gen = torch.Generator(self.device).manual_seed(_seed(self.config.seed, self.env.rank, 1))
        total, seen = 0.0, 0
        for batch in self.valid_loader:
            loss, b = self._loss(batch, gen)
            total += loss.item() * b
            seen += b
        total, seen = self._allreduce(total, seen)
        if not math.isfinite(total):
            raise TrainingDiverged(self._diverged_message(self.state.epoch, 0, total) + " (validation)")
        return total / max(seen, 1)

    # --------------------------------------------------------------------------------- fit
    def finished(self) -> bool:
        return self.state.epoch >= self.config.epochs or self.state.early_stopped(self.config.patience)

    def fit(self, time_limit: float | None = None, on_epoch_end: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Train until early stopping, the epoch cap or ``time_limit`` seconds (checked between
        epochs; at least one epoch runs). Returns the summary also written to summary.json."""
        c, s = self.config, self.state
        start = time.perf_counter()
        if self.env.main:
            self.rundir.mkdir(parents=True, exist_ok=True)
            c.save(self.rundir / ckpt.CONFIG)
        stop = None
        while not self.finished():
            t0 = time.perf_counter()
            train_loss, n = self.train_epoch(s.epoch)
            train_seconds = time.perf_counter() - t0
            valid_loss = self.valid_loss()
            seconds = time.perf_counter() - t0
            s.epoch += 1
            s.seconds += seconds
            improved = valid_loss < s.best_valid
            if improved:
                s.best_valid, s.best_epoch, s.bad_epochs = valid_loss, s.epoch, 0
            else:
                s.bad_epochs += 1
            s.history.append({
                "epoch": s.epoch, "train_loss": train_loss, "valid_loss": valid_loss,
                "best_valid_loss": s.best_valid, "seconds": round(seconds, 3),
                "train_sequences_per_s": round(n / train_seconds, 2), "lr": c.lr,
            })
            if self.env.main:
                if improved:
                    ckpt.atomic_torch_save(self.rundir / ckpt.BEST, {"model": self.net.state_dict(), "epoch": s.epoch, "valid_loss": valid_loss})
                ckpt.atomic_torch_save(self.rundir / ckpt.LAST, self._checkpoint())
                ckpt.write_log(self.rundir, s.history)
                if self.show_progress:
                    tqdm.write(f"epoch {s.epoch}: train {train_loss:.3f}  valid {valid_loss:.3f}"
                               f"{'  (best)' if improved else ''}  {seconds:.1f}s")
            if self.env.world_size > 1:
                dist.barrier()
            if on_epoch_end is not None:
                on_epoch_end(s.epoch)
            elapsed = time.perf_counter() - start
            if time_limit is not None and not self.finished() and elapsed + seconds > time_limit:
                stop = "time_limit"
                break
        if stop is None:
            stop = "early_stopping" if s.early_stopped(c.patience) else "max_epochs"
        summary = {
            "finished": stop != "time_limit", "stop_reason": stop, "epochs": s.epoch,
            "best_epoch": s.best_epoch, "best_valid_loss": s.best_valid, "wall_seconds": round(s.seconds, 2),
        }
        if self.env.main:
            ckpt.atomic_write_text(self.rundir / ckpt.SUMMARY, json.dumps(summary, indent=2) + "\n")
        return summary


def train(config: RunConfig, rundir: str | Path, resume: bool = False, progress: bool = True,
          time_limit: float | None = None, on_epoch_end: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train a run (or continue it with ``resume``) and return its summary."""
    rundir = Path(rundir)
    if (rundir / ckpt.LAST).exists():
        if not resume:
            raise RnemBenchError(f"{rundir} already holds a run; pass --resume to continue it or choose another --out")
        saved = RunConfig.load(rundir / ckpt.CONFIG)
        changed = saved.differences(config)
        if changed:
            raise RnemBenchError(f"cannot resume {rundir}: {', '.join(changed)} differ(s) from the saved config.json")
    trainer = Trainer(config, rundir, progress=progress)
    if resume and (rundir / ckpt.LAST).exists():
        trainer.restore()
    return trainer.fit(time_limit=time_limit, on_epoch_end=on_epoch_end)
