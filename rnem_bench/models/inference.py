"""Running a trained model for evaluation: per-step predictions and simulation rollouts.

Index convention (shared with the evaluator): step t reads frame t and predicts frame t + 1, so
``psi[:, t]`` and ``gamma[:, t]`` are scored against frame t + 1.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch

from rnem_bench.errors import RnemBenchError
from rnem_bench.graphs import GraphedCall
from rnem_bench.models.nem import NEM, bitflip, e_step, flip, flip_mask, init_gamma
from rnem_bench.models.fastpath import autocast

SIM_THRESHOLD = 0.1  # appendix A: max_k psi > 0.1 becomes the pseudo ground truth


def _frames(model: NEM, features: torch.Tensor, min_frames: int) -> torch.Tensor:
    """uint8/float (B, T+1, H, W) -> float on the model's device, with shape checks."""
    if features.ndim != 4:
        raise RnemBenchError(f"features must be (B, T, H, W), got shape {tuple(features.shape)}")
    size = model.config.image_size
    if features.shape[-2:] != (size, size):
        raise RnemBenchError(f"features are {tuple(features.shape[-2:])} frames, model '{model.name}' expects {size}x{size}")
    if features.shape[1] < min_frames:
        raise RnemBenchError(f"need at least {min_frames} frames per sequence, got {features.shape[1]}")
    x = features.to(next(model.parameters()).device).float()
    if not torch.isfinite(x).all():
        raise RnemBenchError("features contain NaN or Inf")
    return x


def _actions(model: NEM, actions: torch.Tensor | None, n_steps: int, device: torch.device) -> torch.Tensor | None:
    if not model.needs_actions:
        return None
    if actions is None:
        raise RnemBenchError(f"model '{model.name}' needs the dataset's 'actions' array")
    if actions.ndim != 2 or actions.shape[1] < n_steps:
        raise RnemBenchError(f"actions must be (B, >= {n_steps}), got shape {tuple(actions.shape)}")
    if actions.min() < 0 or actions.max() >= model.config.n_actions:
        raise RnemBenchError(f"actions must lie in 0..{model.config.n_actions - 1}")
    return actions.to(device).long()


class Inference:
    """Predictions and rollouts of one model over many batches (what ``evaluate_run`` runs).

    With ``cuda_graph`` on CUDA the network part of each (every step of a prediction; the whole
    observe-then-simulate loop of a rollout) is replayed as a CUDA graph (``rnem_bench.graphs``)
    for the batch shape it first meets after the warm-up (a last, smaller batch runs eagerly): a
    paper-config R-NEM launches hundreds of small kernels per step. The
    random draws (bit-flip noise, initial gamma) are made eagerly before it, from the same
    generator and in the same order as the eager code, so both paths score the same draws.
    """

    def __init__(self, model: NEM, k: int, noise: float, bf16: bool = False, cuda_graph: bool = False,
                 warn: Callable[[str], None] | None = None):
        self.model, self.k, self.noise, self.bf16 = model, model.resolve_k(k), noise, bf16
        self.graph = cuda_graph and next(model.parameters()).device.type == "cuda"
        self.warn = warn
        self._predict = GraphedCall(self._predict_net, self.graph, "evaluation", warn)
        self._rollouts: dict[tuple[int, int], GraphedCall] = {}  # (n_observe, n_sim) -> its call

    @torch.no_grad()
    def predict(self, features: torch.Tensor, actions: torch.Tensor | None = None,
                seed: int = 0) -> dict[str, torch.Tensor]:
        """Run the model over a batch as in training (noisy inputs, E-step against the true frame).

        features (B, T+1, H, W) uint8 or float 0/1. Returns CPU float tensors: "psi" and "gamma"
        (B, T, K, H, W), and for relational models "attention" (B, T, K, K) with alpha_ki in
        [k, i] (0 on the diagonal), with K = ``self.k`` (fixed-K models, rnn and lstm, ignore the
        ``k`` given: K = 1). ``seed`` fixes the input noise and the initial gamma; ``bf16`` runs
        the networks under bf16 autocast (as a model trained with it was trained).
        """
        model = self.model
        was_training = model.training
        model.eval()
        x = _frames(model, features, min_frames=2)
        B, T1, H, W = x.shape
        gen = torch.Generator(device=x.device).manual_seed(seed)
        inputs = bitflip(x[:, :-1], self.noise, gen)
        gamma0 = init_gamma(B, self.k, H, gen, device=x.device)
        out = self._predict(inputs, x[:, 1:], gamma0, _actions(model, actions, T1 - 1, x.device))
        model.train(was_training)
        return {name: t.float().cpu() for name, t in out.items()}

    def _predict_net(self, inputs: torch.Tensor, targets: torch.Tensor, gamma0: torch.Tensor,
                     actions: torch.Tensor | None) -> dict[str, torch.Tensor]:
        with autocast(inputs.device, self.bf16):
            out = self.model(inputs, targets, gamma0, actions, record=True)
        return {name: out[name] for name in ("psi", "gamma", "attention") if name in out}

    @torch.no_grad()
    def rollout(self, features: torch.Tensor, n_observe: int, n_sim: int, actions: torch.Tensor | None = None,
                seed: int = 0) -> torch.Tensor:
        """The paper's simulation protocol. Returns (B, n_sim, H, W) on CPU: the total predictions
        sum_k gamma_k psi_k of frames n_observe+1 .. n_observe+n_sim.

        Only the real frames 0..n_observe-1 are used: they are the inputs of steps 0..n_observe-1,
        and the E-steps of steps 0..n_observe-2 see the real next frame. From step n_observe-1 on,
        the E-step's target is the thresholded max_k psi_k (> 0.1 -> 1) and from step n_observe on
        the input is the model's own total prediction of the previous step.

        ``noise``: every input, observed or predicted, goes through the bit-flip corruption the model
        was trained with (as ``predict`` does), ``evaluate_run`` passes the run's noise. A model
        trained only on noisy inputs sees a clean input as out of distribution: R-NEM on mini-balls4
        fed clean inputs lost its objects after one simulated step (simulation BCE 610, 2340, 2769 ...
        vs 305, 772, 1274 ... with its training noise; copy-last-frame 1431, 2005, 2484 ...).
        """
        if n_observe < 1 or n_sim < 1:
            raise RnemBenchError(f"rollout needs n_observe >= 1 and n_sim >= 1, got {n_observe}, {n_sim}")
        model = self.model
        was_training = model.training
        model.eval()
        x = _frames(model, features, min_frames=n_observe)
        B, _, H, W = x.shape
        acts = _actions(model, actions, n_observe + n_sim, x.device)
        gen = torch.Generator(device=x.device).manual_seed(seed)
        gamma0 = init_gamma(B, self.k, H, gen, device=x.device)
        # One draw per step, in the loop's order: the stream the eager loop drew from, step by step.
        flips = (torch.stack([flip_mask((B, H, W), self.noise, gen, x.device) for _ in range(n_observe + n_sim)])
                 if self.noise > 0 else None)  # (S, B, H, W)
        key = (n_observe, n_sim)
        if key not in self._rollouts:
            self._rollouts[key] = GraphedCall(partial(self._rollout_net, n_observe=n_observe, n_sim=n_sim),
                                              self.graph, "evaluation", self.warn)
        sim = self._rollouts[key](x[:, :n_observe].contiguous(), gamma0, flips, acts)["simulation"]
        model.train(was_training)
        return sim.cpu()

    def _rollout_net(self, x: torch.Tensor, gamma0: torch.Tensor, flips: torch.Tensor | None,
                     acts: torch.Tensor | None, n_observe: int, n_sim: int) -> dict[str, torch.Tensor]:
        """The rollout loop on the observed frames x (B, n_observe, H, W) and the drawn noise."""
        model = self.model
        state, psi, gamma = model.initial_state(gamma0)
        frame, out = x[:, 0], []
        for t in range(n_observe + n_sim):
            action = None if acts is None else acts[:, t]
            noisy = frame if flips is None else flip(frame, flips[t])  # bitflip with the drawn mask
            with autocast(x.device, self.bf16):
                state, psi, _ = model.transition(noisy, state, psi, gamma, action)
            observed = t + 1 < n_observe
            target = x[:, t + 1] if observed else (psi.max(dim=1).values > SIM_THRESHOLD).float()
            gamma = e_step(psi, target)
            total = (gamma * psi).sum(dim=1)                      # prediction of frame t + 1
            frame = x[:, t + 1] if observed else total
            if t >= n_observe:
                out.append(total.float())
        return {"simulation": torch.stack(out, dim=1)}


def predict(
    model: NEM, features: torch.Tensor, k: int, noise: float,
    actions: torch.Tensor | None = None, seed: int = 0, bf16: bool = False,
) -> dict[str, torch.Tensor]:
    """``Inference(model, k, noise, bf16).predict(features, actions, seed)``: one batch, eagerly."""
    return Inference(model, k, noise, bf16).predict(features, actions, seed)


def rollout(
    model: NEM, features: torch.Tensor, k: int, n_observe: int, n_sim: int,
    actions: torch.Tensor | None = None, seed: int = 0, bf16: bool = False, noise: float = 0.0,
) -> torch.Tensor:
    """``Inference(model, k, noise, bf16).rollout(features, n_observe, n_sim, actions, seed)``:
    one batch, eagerly (the protocol is documented there)."""
    return Inference(model, k, noise, bf16).rollout(features, n_observe, n_sim, actions, seed)
