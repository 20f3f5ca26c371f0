"""DQN policy files: written by the trainer, validated on every load.

A policy file is a ``torch.save``d dict, read back with ``weights_only=True`` (no pickled code)::

    {"format": "rnem-bench/dqn-policy", "version": 1, "game": "SpaceInvaders",
     "n_actions": 6, "agent_steps": 1000000, "state_dict": {<NatureDQN weights>}}

The trainer writes one (``policy.pt``) beside its resumable ``train.pt`` (which embeds the same
dict under "policy", so either file works); ``export_policy`` writes a small copy with fp16
weights for shipping (loaded back into the fp32 network). A bare state dict of a compatible Nature-DQN
(the key names and shapes of ``NatureDQN``) is accepted too. Anything else is refused with a
one-line error naming what does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rnem_bench.dqn.network import NatureDQN
from rnem_bench.errors import RnemBenchError

POLICY_FORMAT = "rnem-bench/dqn-policy"
TRAIN_FORMAT = "rnem-bench/dqn-train"
POLICY_VERSION = 1


def policy_dict(net: NatureDQN, game: str, agent_steps: int) -> dict[str, Any]:
    """The portable policy record (see the module docstring)."""
    return {
        "format": POLICY_FORMAT, "version": POLICY_VERSION, "game": game, "n_actions": net.n_actions,
        "agent_steps": int(agent_steps),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
    }


def _read(path: Path) -> Any:
    if not path.is_file():
        raise RnemBenchError(f"DQN checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or pickled objects we refuse to run
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise RnemBenchError(f"{path} is not a readable PyTorch weights file ({type(err).__name__}: {first})") from None


def _check_state_dict(path: Path, state: dict[str, Any]) -> int:
    """Validate names and shapes against NatureDQN; returns the action count it implies."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RnemBenchError(f"{path} is not a DQN checkpoint: expected a dict of tensors")
    head = state.get("out.weight")
    if head is None or head.ndim != 2:
        raise RnemBenchError(f"{path} is not a Nature-DQN checkpoint: no 'out.weight' output layer")
    n_actions = int(head.shape[0])
    expected = NatureDQN(n_actions).state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise RnemBenchError(f"{path} does not fit the Nature-DQN network: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, ref in expected.items():
        if tuple(state[name].shape) != tuple(ref.shape):
            raise RnemBenchError(
                f"{path} does not fit the Nature-DQN network: {name} has shape {tuple(state[name].shape)}, expected {tuple(ref.shape)}"
            )
        if not torch.isfinite(state[name]).all():
            raise RnemBenchError(f"{path}: {name} holds NaN or infinite weights")
    return n_actions


def load_policy_record(path: str | Path) -> dict[str, Any]:
    """Read and validate a DQN checkpoint; returns a policy record (game is None for bare state dicts)."""
    path = Path(path)
    blob = _read(path)
    if isinstance(blob, dict) and blob.get("format") == TRAIN_FORMAT:
        blob = blob.get("policy")
    if isinstance(blob, dict) and "format" in blob:
        if blob["format"] != POLICY_FORMAT:
            raise RnemBenchError(f"{path} has format '{blob['format']}', not an rnem-bench DQN policy")
        if int(blob.get("version", 0)) > POLICY_VERSION:
            raise RnemBenchError(f"{path} is DQN policy version {blob['version']}; this rnem-bench reads <= {POLICY_VERSION}")
        record = dict(blob)
    else:
        record = {"format": POLICY_FORMAT, "version": POLICY_VERSION, "game": None, "agent_steps": None, "state_dict": blob}
    record["n_actions"] = _check_state_dict(path, record.get("state_dict"))
    return record


def load_network(path: str | Path, game: str | None = None, n_actions: int | None = None) -> NatureDQN:
    """A validated NatureDQN from ``path``, checked against the game and action count it will play."""
    record = load_policy_record(path)
    if game is not None and record["game"] is not None and record["game"] != game:
        raise RnemBenchError(f"{path} is a policy for {record['game']}, not {game}")
    if n_actions is not None and record["n_actions"] != n_actions:
        raise RnemBenchError(f"{path} has {record['n_actions']} actions; {game or 'this game'} has {n_actions}")
    net = NatureDQN(record["n_actions"])
    net.load_state_dict(record["state_dict"])
    return net


def export_policy(src: str | Path, dst: str | Path, half: bool = True) -> dict[str, Any]:
    """Write the validated policy of ``src`` (a policy.pt, a train.pt or a run dir) to ``dst``,
    with fp16 weights if ``half`` (half the size: 3.4 MB for SpaceInvaders). Returns the record."""
    src = Path(src)
    record = load_policy_record(src / "policy.pt" if src.is_dir() else src)
    dtype = torch.float16 if half else torch.float32
    record["state_dict"] = {k: v.to(dtype).contiguous() for k, v in record["state_dict"].items()}
    if not all(torch.isfinite(v).all() for v in record["state_dict"].values()):
        raise RnemBenchError(f"{src}: weights overflow fp16; export with half=False")
    from rnem_bench.io import atomic_torch_save

    atomic_torch_save(Path(dst), record)
    return record
