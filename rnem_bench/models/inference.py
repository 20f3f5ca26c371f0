"""Running a trained model for evaluation: per-step predictions and simulation rollouts.

Index convention (shared with the evaluator): step t reads frame t and predicts frame t + 1, so
``psi[:, t]`` and ``gamma[:, t]`` are scored against frame t + 1.
"""

from __future__ import annotations

import torch

from rnem_bench.errors import RnemBenchError
from rnem_bench.models.nem import NEM, bitflip, e_step, init_gamma
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


@torch.no_grad()
def predict(
    model: NEM, features: torch.Tensor, k: int, noise: float,
    actions: torch.Tensor | None = None, seed: int = 0, bf16: bool = False,
) -> dict[str, torch.Tensor]:
    """Run the model over a batch as in training (noisy inputs, E-step against the true frame).

    features (B, T+1, H, W) uint8 or float 0/1. Returns CPU float tensors: "psi" and "gamma"
    (B, T, K, H, W), and for relational models "attention" (B, T, K, K) with alpha_ki in
    [k, i] (0 on the diagonal). ``k`` is ignored by fixed-K models (rnn, lstm: K = 1).
    ``seed`` fixes the input noise and the initial gamma; ``bf16`` runs the networks under bf16
    autocast (as a model trained with it was trained).
    """
    was_training = model.training
    model.eval()
    x = _frames(model, features, min_frames=2)
    B, T1, H, W = x.shape
    gen = torch.Generator(device=x.device).manual_seed(seed)
    inputs = bitflip(x[:, :-1], noise, gen)
    gamma0 = init_gamma(B, model.resolve_k(k), H, gen, device=x.device)
    with autocast(x.device, bf16):
        out = model(inputs, x[:, 1:], gamma0, _actions(model, actions, T1 - 1, x.device), record=True)
    model.train(was_training)
    return {name: out[name].float().cpu() for name in ("psi", "gamma", "attention") if name in out}


@torch.no_grad()
def rollout(
    model: NEM, features: torch.Tensor, k: int, n_observe: int, n_sim: int,
    actions: torch.Tensor | None = None, seed: int = 0, bf16: bool = False, noise: float = 0.0,
) -> torch.Tensor:
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
    was_training = model.training
    model.eval()
    x = _frames(model, features, min_frames=n_observe)
    B, _, H, W = x.shape
    acts = _actions(model, actions, n_observe + n_sim, x.device)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    state, psi, gamma = model.initial_state(init_gamma(B, model.resolve_k(k), H, gen, device=x.device))
    frame, out = x[:, 0], []
    for t in range(n_observe + n_sim):
        action = None if acts is None else acts[:, t]
        with autocast(x.device, bf16):
            state, psi, _ = model.transition(bitflip(frame, noise, gen), state, psi, gamma, action)
        observed = t + 1 < n_observe
        target = x[:, t + 1] if observed else (psi.max(dim=1).values > SIM_THRESHOLD).float()
        gamma = e_step(psi, target)
        total = (gamma * psi).sum(dim=1)                      # prediction of frame t + 1
        frame = x[:, t + 1] if observed else total
        if t >= n_observe:
            out.append(total.float().cpu())
    model.train(was_training)
    return torch.stack(out, dim=1)
