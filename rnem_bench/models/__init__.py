"""Reference models: R-NEM and its baselines, all one N-EM core (``nem.py``) with different
settings. Public API (used by the harness and the evaluator):

- ``build_model(name, image_size, **overrides)``: a fresh ``NEM`` module;
- ``predict(model, features, k, noise)``: per-step psi, gamma (and attention) of a batch;
- ``rollout(model, features, k, n_observe, n_sim)``: the paper's simulation protocol;
- ``Inference(model, k, noise)``: both over many batches, on CUDA optionally replayed as CUDA graphs.

Adding a model: write ``rnem_bench/models/<name>.py`` holding ``CONFIG = NEMConfig(...)`` (new
cells go in ``cells.py``, new interaction functions in ``interaction.py``) and add one line to
``MODELS``.
"""

from __future__ import annotations

import dataclasses
import importlib

from rnem_bench.errors import RnemBenchError
from rnem_bench.models.inference import Inference, predict, rollout
from rnem_bench.models.nem import NEM, NEMConfig

# registry name -> module holding its CONFIG
MODELS: dict[str, str] = {
    "rnem": "rnem_bench.models.rnem",
    "rnem-noatt": "rnem_bench.models.rnem_noatt",
    "rnn-em": "rnem_bench.models.rnn_em",
    "rnn": "rnem_bench.models.rnn",
    "lstm": "rnem_bench.models.lstm",
}


def model_config(name: str, image_size: int, **overrides) -> NEMConfig:
    """The registered model's config for frames of ``image_size``, with field overrides."""
    if name not in MODELS:
        raise RnemBenchError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    unknown = set(overrides) - NEMConfig.field_names()
    if unknown:
        raise RnemBenchError(f"unknown setting(s) for model '{name}': {', '.join(sorted(unknown))}")
    base = importlib.import_module(MODELS[name]).CONFIG
    return dataclasses.replace(base, image_size=image_size, **overrides)


def build_model(name: str, image_size: int, **overrides) -> NEM:
    """A freshly initialised model (e.g. ``build_model("rnem", 84, n_actions=6)``)."""
    return NEM(model_config(name, image_size, **overrides), name=name)


__all__ = ["MODELS", "NEM", "NEMConfig", "Inference", "build_model", "model_config", "predict", "rollout"]
