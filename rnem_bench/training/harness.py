"""The training loop: Adam on the N-EM loss, early stopping on the validation loss, checkpoints
every epoch, exact resume.

Determinism: the model is initialised from ``config.seed``; each epoch's batch order comes from
the loader's ``(seed, epoch)`` shuffle and its input noise and initial gammas from a generator
seeded with ``(seed, epoch, rank)``. So a run resumed from ``last.pt`` (saved at an epoch
boundary with the optimizer, early-stopping state and RNG states) redoes exactly what the
killed run would have done, and ends where an uninterrupted run ends.

Each update is a ``step.TrainStep``: eager, or with ``cuda_graph`` (one process on CUDA) a replayed
CUDA graph of the same update on the same draws (``training/step.py``); validation batches likewise
(forward only, ``rnem_bench.graphs.GraphedCall``).

Ctrl-C (SIGINT) and SIGTERM stop a run after the optimiser update in flight: ``last.pt`` then
also holds the position within the epoch (batches done, their loss sums, the noise generator),
summary.json says ``"stop_reason": "signal"`` and ``fit`` raises ``Interrupted`` (exit status
130 / 143). ``--resume`` skips the batches done and continues exactly where the run stopped.

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
import signal
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, NoReturn

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from rnem_bench.data.loader import SequenceLoader
from rnem_bench.data.store import open_dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.graphs import GraphedCall
from rnem_bench.metrics import GROUPING_COUNTS, assignments, grouping_rates, grouping_scores
from rnem_bench.models import build_model
from rnem_bench.models.fastpath import fast_layout
from rnem_bench.protocol import SIM_OBSERVE
from rnem_bench.signals import Interrupted, StopRequest, signal_name, stop_on_signals
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.config import RunConfig
from rnem_bench.training.step import StepInputs, TrainStep, draw_inputs, forward, make_optimizer, match_capturable


@dataclass
class Progress:
    """Training state that lives across epochs (saved in last.pt)."""

    epoch: int = 0                      # epochs completed
    best_valid: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0                 # epochs since the validation loss last improved
    seconds: float = 0.0                # training wall time of the finished epochs, over all sessions
    history: list[dict[str, Any]] = field(default_factory=list)
    updates: int = 0                    # optimiser steps over all sessions

    def early_stopped(self, patience: int) -> bool:
        return self.bad_epochs >= patience


@dataclass
class EpochCursor:
    """How far one epoch's training has got. Saved in last.pt (as "mid_epoch") when a stop
    signal cuts the epoch short, so that a resumed run skips the batches done (the batch order
    is fixed by (seed, epoch)) and draws the same noise for the rest."""

    epoch: int                          # 0-based
    n_batches: int                      # batches in this epoch (per rank)
    done: int = 0                       # batches done, i.e. optimiser updates taken in this epoch
    loss_sum: float = 0.0               # this rank: sum of loss x batch size over the batches done
    seen: int = 0                       # this rank: sequences in them
    seconds: float = 0.0                # training time spent on them, over all sessions
    gen_state: torch.Tensor | None = None  # this rank's noise/gamma generator after them

    @property
    def complete(self) -> bool:
        return self.done >= self.n_batches


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


COST_PROBE = 4  # updates timed (after a first, warm-up one) before ``on_cost`` is told the measured pace


@dataclass(frozen=True)
class Cost:
    """What a run costs at the pace measured on its first updates (told once, by ``on_cost``)."""

    seconds_per_update: float
    updates_per_epoch: int
    epochs: int                          # the run's epoch cap: its worst case, early stopping aside

    @property
    def epoch_seconds(self) -> float:
        return self.seconds_per_update * self.updates_per_epoch

    @property
    def worst_case_seconds(self) -> float:
        return self.epoch_seconds * self.epochs


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers (independent streams for epochs, ranks, purposes)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def sequence_outputs(
    model: torch.nn.Module, frames: torch.Tensor, k: int, noise: float, gen: torch.Generator,
    actions: torch.Tensor | None = None, bf16: bool = False, record: bool = False,
) -> dict[str, torch.Tensor]:
    """The model's outputs on one batch: frames (B, T+1, H, W) 0/1 on the model's device.
    Inputs are frames 0..T-1 with bit-flip noise, targets the clean frames 1..T. Always "loss";
    with ``record`` also "psi" and "gamma" (B, T, K, H, W). (``step.draw_inputs`` and
    ``step.forward``, the pieces the training loop runs.)"""
    return forward(model, draw_inputs(frames, k, noise, gen, actions), bf16, record)


def sequence_loss(
    model: torch.nn.Module, frames: torch.Tensor, k: int, noise: float, gen: torch.Generator,
    actions: torch.Tensor | None = None, bf16: bool = False,
) -> torch.Tensor:
    """The training objective of one batch (see ``sequence_outputs``)."""
    return sequence_outputs(model, frames, k, noise, gen, actions, bf16)["loss"]


class Trainer:
    """Trains ``config`` into ``rundir``. Use ``fit()``; a fresh or resumed run alike."""

    def __init__(self, config: RunConfig, rundir: str | Path, progress: bool = True,
                 on_cost: Callable[[Cost], None] | None = None):
        config.validate()
        self.on_cost = on_cost  # told the measured pace once, after the first few updates
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
            elif self.device.index is None:   # plain "cuda": set_device needs an index
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

        self.ds = open_dataset(config.dataset)
        if self.ds.fingerprint != config.dataset_fingerprint:
            raise RnemBenchError(f"{config.dataset} has fingerprint {self.ds.fingerprint}, the run was made on {config.dataset_fingerprint}")
        torch.manual_seed(config.seed)
        self.net = fast_layout(build_model(config.model, config.image_size, init=config.init, **config.model_options).to(self.device), self.device)
        self.net.decoder.use_reference(config.reference_decoder)
        self.k = self.net.resolve_k(config.k)
        if config.compile:
            self.net.compile_step(dynamic=False)
        self.model: torch.nn.Module = self.net
        if self.env.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = make_optimizer(self.net.parameters(), config.lr, self.device)
        # CUDA graphs: one process on CUDA only (DDP's gradient all-reduce stays eager).
        graph = config.cuda_graph and self.device.type == "cuda" and self.env.world_size == 1
        warn = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731
        self.train_step = TrainStep(self.model, self.optimizer, bf16=config.bf16, graph=graph, warn=warn)
        self.valid_call = GraphedCall(self._valid_forward, graph, "validation", warn=warn)
        self.state = Progress()
        self._partial: EpochCursor | None = None   # the epoch last.pt was saved in the middle of
        self._stop: StopRequest | None = None      # set while fit() runs
        arrays = ("features", "actions") if config.use_actions else ("features",)
        common = dict(arrays=arrays, batch_size=config.batch_size, seed=config.seed,
                      rank=self.env.rank, world_size=self.env.world_size)
        self.train_loader = SequenceLoader(self.ds, "train", shuffle=True, drop_last=True, limit=config.train_limit, **common)
        # Validation also reads the true groups: the run logs its grouping (ARI) every epoch, as the
        # original code logged its "score", so when a run leaves the symmetric plateau can be read.
        self.track_ari = self.k > 1 and "groups" in self.ds.arrays
        valid_arrays = {**common, "arrays": arrays + ("groups",) if self.track_ari else arrays}
        self.valid_loader = SequenceLoader(self.ds, "valid", shuffle=False, drop_last=False, limit=config.valid_limit, **valid_arrays)
        # Probes: the same validation every ``probe_every`` updates on the first ``probe_limit``
        # sequences, logged to probes.jsonl, so a learning curve is seen between epochs.
        limits = [x for x in (config.probe_limit, config.valid_limit) if x is not None]
        probe_limit = min(limits) if limits else None
        self.probe_loader = (SequenceLoader(self.ds, "valid", shuffle=False, drop_last=False, limit=probe_limit, **valid_arrays)
                             if config.probe_every else None)

    # ------------------------------------------------------------------ checkpoint / resume
    def _checkpoint(self, mid_epoch: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        s = self.state
        return {
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng,
            "epoch": s.epoch, "best_valid": s.best_valid, "best_epoch": s.best_epoch,
            "bad_epochs": s.bad_epochs, "seconds": s.seconds, "history": s.history,
            "updates": s.updates, "mid_epoch": mid_epoch,
        }

    def _mid_epoch(self, cur: EpochCursor) -> dict[str, Any]:
        """``cur`` as saved in last.pt, with every rank's own sums and generator (a collective)."""
        ranks = self._gather({"loss_sum": cur.loss_sum, "seen": cur.seen, "gen": cur.gen_state})
        return {"epoch": cur.epoch, "n_batches": cur.n_batches, "done": cur.done, "seconds": cur.seconds,
                "ranks": ranks}

    def _restore_mid_epoch(self, mid: dict[str, Any], path: Path) -> EpochCursor:
        ranks = mid["ranks"]
        if len(ranks) != self.env.world_size:
            raise RnemBenchError(f"{path} was saved mid-epoch by {len(ranks)} process(es); "
                                 f"resume it with as many, not {self.env.world_size}")
        mine = ranks[self.env.rank]
        return EpochCursor(int(mid["epoch"]), int(mid["n_batches"]), int(mid["done"]), float(mine["loss_sum"]),
                           int(mine["seen"]), float(mid["seconds"]), mine["gen"])

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
            match_capturable(self.optimizer, self.device)
            torch.set_rng_state(saved["rng"]["torch"])
            if "cuda" in saved["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            raise RnemBenchError(f"{path} does not fit this run's model: {type(err).__name__}: "
                                 f"{str(err).splitlines()[0][:200]}") from None
        updates = saved.get("updates")  # absent in checkpoints from before it was counted
        self.state = Progress(saved["epoch"], saved["best_valid"], saved["best_epoch"], saved["bad_epochs"],
                              saved["seconds"], list(saved["history"]),
                              updates=self._updates_before(saved["epoch"]) if updates is None else int(updates))
        mid = saved.get("mid_epoch")
        self._partial = None if mid is None else self._restore_mid_epoch(mid, path)
        self._trim_probes()

    def _updates_before(self, epochs: int) -> int:
        """The optimiser steps of ``epochs`` whole epochs (each epoch's batch count is known)."""
        total = 0
        for epoch in range(epochs):
            self.train_loader.set_epoch(epoch)
            total += self._n_batches(self.train_loader)
        return total

    # ----------------------------------------------------------------------------- one batch
    def _inputs(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> StepInputs:
        """A loader batch on the device, with its noise and initial gamma drawn from ``gen``."""
        c = self.config
        x = batch["features"][:, : c.steps + 1].to(self.device, non_blocking=True)  # (B, T+1, H, W) uint8
        actions = batch["actions"][:, : c.steps].to(self.device).long() if c.use_actions else None
        return draw_inputs(x, self.k, c.noise, gen, actions)

    def _allreduce(self, *values: float) -> list[float]:
        if self.env.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def _gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""
        if self.env.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.env.world_size
        dist.all_gather_object(out, obj)
        return out

    def _stop_requested(self) -> bool:
        """Whether a stop signal arrived. With DDP a collective (on any rank: all ranks stop at
        the same update), so every rank must call it at the same point."""
        here = self._stop is not None and self._stop.requested
        if self.env.world_size == 1:
            return here
        flag = torch.tensor([int(here)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _n_batches(self, loader: SequenceLoader) -> int:
        """Batches per rank this epoch: the fewest any rank has, so DDP ranks stay in step."""
        n = torch.tensor([len(loader)], device=self.device)
        if self.env.world_size > 1:
            dist.all_reduce(n, op=dist.ReduceOp.MIN)
        return int(n.item())

    # ----------------------------------------------------------------------------- one epoch
    def _start_epoch(self, epoch: int) -> EpochCursor:
        """The cursor to train ``epoch`` from: the saved one if last.pt stopped inside it."""
        n_batches = self._n_batches(self.train_loader)
        cur, self._partial = self._partial, None
        if cur is not None and cur.epoch == epoch:
            cur.n_batches = n_batches
            return cur
        return EpochCursor(epoch, n_batches)

    def train_epoch(self, epoch: int) -> EpochCursor:
        """Train one epoch (or the rest of it, when last.pt was saved inside it). A stop signal
        ends it early, after the update in flight: the cursor returned is then not complete."""
        self.model.train()
        self.train_loader.set_epoch(epoch)
        cur = self._start_epoch(epoch)
        if cur.n_batches == 0:
            raise RnemBenchError(f"no training batch: {self.train_loader.n} sequences < batch size {self.config.batch_size}")
        gen = torch.Generator(self.device).manual_seed(_seed(self.config.seed, epoch, self.env.rank, 0))
        if cur.gen_state is not None:
            gen.set_state(cur.gen_state)
        t0 = time.perf_counter()
        sync_every = 1 if self.device.type == "cpu" else 10  # .item() stalls the GPU queue
        check_every = 1 if self.env.world_size == 1 else sync_every  # with DDP the check is a collective
        total = torch.tensor(cur.loss_sum, dtype=torch.float64, device=self.device)
        done, seen = cur.done, cur.seen
        bar = tqdm(total=cur.n_batches, initial=done, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch",
                   disable=not self.show_progress, leave=False, dynamic_ncols=True)
        # The loader's order is fixed by (seed, epoch): skipping the batches done resumes it exactly.
        batches = islice(self.train_loader, done, cur.n_batches) if not cur.complete else ()
        probe_start, probe_from = None, done + 1  # time updates after the first (warm-up) one
        for i, batch in enumerate(batches, start=done):
            if i == probe_from and self.on_cost is not None:
                probe_start = self._now()
            inputs = self._inputs(batch, gen)
            loss = self.train_step(inputs)  # eager, or a CUDA graph's replay: no host sync either way
            self.state.updates += 1
            total += loss * inputs.batch_size
            seen += inputs.batch_size
            done = i + 1
            if done % sync_every == 0 or done == cur.n_batches:
                value = loss.item()
                if not math.isfinite(value) or not math.isfinite(total.item()):
                    bar.close()
                    raise TrainingDiverged(self._diverged_message(epoch, i, value))
                bar.set_postfix(loss=f"{value:.2f}")
            bar.update(1)
            if self.probe_loader is not None and self.state.updates % self.config.probe_every == 0:
                t_probe = time.perf_counter()
                self._probe(epoch + done / cur.n_batches)
                t0 += time.perf_counter() - t_probe  # probes are not training time
            if probe_start is not None and done == probe_from + COST_PROBE:
                self._tell_cost((self._now() - probe_start) / COST_PROBE, cur.n_batches)
                probe_start = None
            if done < cur.n_batches and done % check_every == 0 and self._stop_requested():
                break
        bar.close()
        cur.done, cur.seen, cur.loss_sum = done, seen, total.item()
        cur.seconds += time.perf_counter() - t0
        cur.gen_state = gen.get_state()
        return cur

    def _now(self) -> float:
        """Wall time once the device has done the work queued so far (CUDA runs asynchronously)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _tell_cost(self, seconds_per_update: float, updates_per_epoch: int) -> None:
        on_cost, self.on_cost = self.on_cost, None  # once per session
        on_cost(Cost(seconds_per_update, updates_per_epoch, self.config.epochs))

    def _epoch_loss(self, cur: EpochCursor) -> tuple[float, int]:
        """The epoch's mean training loss over all ranks, and the sequences it saw."""
        total_sum, count = self._allreduce(cur.loss_sum, cur.seen)
        return total_sum / count, int(count)

    def _diverged_message(self, epoch: int, batch: int, value: float) -> str:
        kept = (f"last good checkpoint: {self.rundir / ckpt.LAST} (epoch {self.state.epoch})"
                if self.state.epoch else "no checkpoint was written")
        return f"training loss became {value} at epoch {epoch + 1}, batch {batch + 1}; run stopped ({kept}); try a lower --lr"

    def _valid_forward(self, inputs: torch.Tensor, targets: torch.Tensor, gamma0: torch.Tensor,
                       actions: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One validation batch, forward only: "loss", and "gamma" where ARI is tracked (what
        ``valid_call`` runs, eagerly or replayed as a CUDA graph)."""
        out = forward(self.model, StepInputs(inputs, targets, gamma0, actions), self.config.bf16, record=self.track_ari)
        return {name: out[name] for name in ("loss", "gamma") if name in out}

    def _probe(self, epoch: float) -> None:
        """One probe (validation on the probe subset), appended to probes.jsonl by rank 0."""
        scores = self.validate(self.probe_loader)
        self.model.train()
        if scores is None or not self.env.main:
            return
        line = {"updates": self.state.updates, "epoch": round(epoch, 4), "n_sequences": self.probe_loader.n, **scores}
        with open(self.rundir / ckpt.PROBES, "a") as f:
            f.write(json.dumps(line) + "\n")

    def _trim_probes(self) -> None:
        """Drop probes logged after the checkpoint a resumed run starts from (they are redone)."""
        path = self.rundir / ckpt.PROBES
        if self.env.main and path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln).get("updates", 0) <= self.state.updates]
            if len(kept) != len(lines):
                ckpt.atomic_write_text(path, "".join(ln + "\n" for ln in kept))

    @torch.no_grad()
    def validate(self, loader: SequenceLoader | None = None) -> dict[str, float] | None:
        """The mean validation loss ("valid_loss") and, for mixture models on data with true
        groups, the grouping of argmax_k gamma as the evaluator computes it: ARI averaged over
        steps ("valid_ari_mean"), at the last step ("valid_ari_last"), the video ARI of the late
        steps ("valid_ari_video") and the late steps' grouping diagnostics ("valid_merge_rate",
        "valid_merge_rate_apart", "valid_split_rate", "valid_pair_precision", "valid_pair_recall");
        None if a stop signal cut it short (single process). ``loader``: the validation split
        (default) or the probe subset."""
        self.model.eval()
        c = self.config
        # The same noise every epoch so that losses are comparable across epochs.
        gen = torch.Generator(self.device).manual_seed(_seed(c.seed, self.env.rank, 1))
        total, seen = 0.0, 0
        late_from = SIM_OBSERVE if SIM_OBSERVE < c.steps else 0
        ari = torch.zeros(c.steps, dtype=torch.float64)
        video = torch.zeros((), dtype=torch.float64)
        counts = {name: torch.zeros((), dtype=torch.float64) for name in GROUPING_COUNTS}
        for batch in (self.valid_loader if loader is None else loader):
            # Ranks may hold different numbers of validation batches: check only when alone.
            if self.env.world_size == 1 and self._stop_requested():
                return None
            inputs = self._inputs(batch, gen)
            out = self.valid_call(inputs.inputs, inputs.targets, inputs.gamma0, inputs.actions)
            total += out["loss"].item() * inputs.batch_size
            seen += inputs.batch_size
            if self.track_ari:  # a step's gamma groups the frame it predicts: frame t + 1
                groups = batch["groups"][:, 1 : c.steps + 1].to(self.device)
                labels = assignments(out["gamma"])
                per_frame, per_video, per_count = grouping_scores(labels, groups, late_from)
                ari += per_frame.sum(0).cpu()
                video += per_video.sum().cpu()
                for name, v in per_count.items():  # (B, T): the late steps' diagnostics
                    counts[name] += v[:, late_from:].sum().cpu()
        total, seen, video_sum, *sums = self._allreduce(total, seen, float(video), *ari.tolist(),
                                                         *(float(counts[name]) for name in GROUPING_COUNTS))
        ari_sums, count_sums = sums[: c.steps], dict(zip(GROUPING_COUNTS, sums[c.steps:]))
        if not math.isfinite(total):
            raise TrainingDiverged(self._diverged_message(self.state.epoch, 0, total) + " (validation)")
        scores = {"valid_loss": total / max(seen, 1)}
        if self.track_ari:
            per_step = [a / max(seen, 1) for a in ari_sums]
            scores.update(valid_ari_mean=sum(per_step) / len(per_step), valid_ari_last=per_step[-1],
                          valid_ari_video=video_sum / max(seen, 1))
            scores.update({f"valid_{name}": v for name, v in grouping_rates(count_sums).items() if v is not None})
        return scores

    # --------------------------------------------------------------------------------- fit
    def finished(self) -> bool:
        return self.state.epoch >= self.config.epochs or self.state.early_stopped(self.config.patience)

    def fit(self, time_limit: float | None = None, on_epoch_end: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Train until early stopping, the epoch cap or ``time_limit`` seconds (checked between
        epochs; at least one epoch runs). Returns the summary also written to summary.json.

        SIGINT and SIGTERM are caught while it runs: the update in flight is finished, last.pt
        saved (mid-epoch) and ``Interrupted`` raised (exit status 130 / 143)."""
        with stop_on_signals() as stop:
            self._stop = stop
            try:
                return self._fit(time_limit, on_epoch_end)
            finally:
                self._stop = None

    def _fit(self, time_limit: float | None, on_epoch_end: Callable[[int], None] | None) -> dict[str, Any]:
        c, s = self.config, self.state
        start = time.perf_counter()
        if self.env.main:
            self.rundir.mkdir(parents=True, exist_ok=True)
            c.save(self.rundir / ckpt.CONFIG)
        stop = None
        while not self.finished():
            cur = self.train_epoch(s.epoch)
            if not cur.complete:
                self._interrupt(cur)
            t_valid = time.perf_counter()
            scores = self.validate()
            if scores is None:
                self._interrupt(cur)
            valid_loss = scores["valid_loss"]
            seconds = cur.seconds + time.perf_counter() - t_valid
            train_loss, n = self._epoch_loss(cur)
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
                "train_sequences_per_s": round(n / max(cur.seconds, 1e-9), 2), "lr": c.lr,
                "updates": s.updates, **{k: v for k, v in scores.items() if k != "valid_loss"},
            })
            if self.env.main:
                if improved:
                    ckpt.atomic_torch_save(self.rundir / ckpt.BEST, {"model": self.net.state_dict(), "epoch": s.epoch, "valid_loss": valid_loss})
                ckpt.atomic_torch_save(self.rundir / ckpt.LAST, self._checkpoint())
                ckpt.write_log(self.rundir, s.history)
                if self.show_progress:
                    ari = f"  valid ARI {scores['valid_ari_mean']:.3f}" if "valid_ari_mean" in scores else ""
                    tqdm.write(f"epoch {s.epoch}: train {train_loss:.3f}  valid {valid_loss:.3f}{ari}"
                               f"{'  (best)' if improved else ''}  {seconds:.1f}s")
            if self.env.world_size > 1:
                dist.barrier()
            if on_epoch_end is not None:
                on_epoch_end(s.epoch)
            if not self.finished() and self._stop_requested():  # a finished run just ends
                self._interrupt(None)
            elapsed = time.perf_counter() - start
            if time_limit is not None and not self.finished() and elapsed + seconds > time_limit:
                stop = "time_limit"
                break
        if stop is None:
            stop = "early_stopping" if s.early_stopped(c.patience) else "max_epochs"
        return self._write_summary(stop)

    def _write_summary(self, stop: str, extra_seconds: float = 0.0, **more: Any) -> dict[str, Any]:
        """summary.json (rank 0) and its dict; ``extra_seconds``: time spent in an unfinished epoch."""
        s = self.state
        summary = {
            "finished": stop not in ("time_limit", "signal"), "stop_reason": stop, "epochs": s.epoch,
            "updates": s.updates, "best_epoch": s.best_epoch,
            "best_valid_loss": s.best_valid if math.isfinite(s.best_valid) else None,  # None: no epoch yet
            "wall_seconds": round(s.seconds + extra_seconds, 2), **more,
        }
        if self.env.main:
            ckpt.atomic_write_text(self.rundir / ckpt.SUMMARY, json.dumps(summary, indent=2) + "\n")
        return summary

    def _interrupt(self, cur: EpochCursor | None) -> NoReturn:
        """Save where training stands (inside epoch ``cur``, or between epochs), write the log and
        summary, and raise ``Interrupted``."""
        s = self.state
        mid = None if cur is None else self._mid_epoch(cur)  # a collective with DDP
        # With DDP the signal may have reached another rank only: stop as for SIGTERM.
        signum = self._stop.signum if self._stop is not None and self._stop.signum else signal.SIGTERM
        path = self.rundir / ckpt.LAST
        if self.env.main:
            ckpt.atomic_torch_save(path, self._checkpoint(mid))
            ckpt.write_log(self.rundir, s.history)
            self._write_summary("signal", 0.0 if cur is None else cur.seconds, signal=signal_name(signum))
        if self.env.world_size > 1:
            dist.barrier()
        where = f"after epoch {s.epoch}" if cur is None else f"in epoch {cur.epoch + 1} after batch {cur.done}/{cur.n_batches}"
        raise Interrupted(signum, f"stopped by {signal_name(signum)} {where} ({s.updates} updates); saved {path}")


def train(config: RunConfig, rundir: str | Path, resume: bool = False, progress: bool = True,
          time_limit: float | None = None, on_epoch_end: Callable[[int], None] | None = None,
          on_cost: Callable[[Cost], None] | None = None) -> dict[str, Any]:
    """Train a run (or continue it with ``resume``) and return its summary."""
    rundir = Path(rundir)
    if (rundir / ckpt.LAST).exists():
        if not resume:
            raise RnemBenchError(f"{rundir} already holds a run; pass --resume to continue it or choose another --out")
        saved = RunConfig.load(rundir / ckpt.CONFIG)
        changed = saved.differences(config)
        if changed:
            raise RnemBenchError(f"cannot resume {rundir}: {', '.join(changed)} differ(s) from the saved config.json")
    trainer = Trainer(config, rundir, progress=progress, on_cost=on_cost)
    if resume and (rundir / ckpt.LAST).exists():
        trainer.restore()
    return trainer.fit(time_limit=time_limit, on_epoch_end=on_epoch_end)
