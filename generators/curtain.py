"""Bouncing balls behind an invisible curtain (task ``curtain``; paper section 4, "Hidden Factors").

Three equal-mass balls move with the physics of ``balls.py``; each sequence gets a rectangle (the
curtain) at a random place that hides whatever passes behind it in ``features``. ``groups``,
``collisions`` and the states still record the hidden balls, so occlusion can be evaluated, and the
rectangle itself is stored as the ``curtain`` mask. The curtain's size and place come from a
second per-sequence seed stream, so the ball trajectories equal those of ``balls`` with the same
seed and parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numba as nb
import numpy as np

from rnem_bench.errors import RnemBenchError
from rnem_bench.generators import balls
from rnem_bench.generators.chunks import empty_chunk


@dataclass(frozen=True)
class Params(balls.Params):
    n_balls: tuple[int, int] = (3, 3)
    heavy_prob: float = 0.0             # equal masses, as in the paper
    curtain_min: float = 0.3            # curtain side ~ U[min, max] x image size, per axis
    curtain_max: float = 0.5

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.curtain_min <= self.curtain_max < 1.0:
            raise RnemBenchError(
                f"curtain size range {self.curtain_min}-{self.curtain_max} is invalid: need 0 < min <= max < 1"
            )

    def balls_params(self) -> balls.Params:
        names = {f.name for f in fields(balls.Params)}
        return balls.Params(**{k: v for k, v in self.__dict__.items() if k in names})


def layout(params: Params) -> dict[str, tuple[int, ...]]:
    return {**balls.layout(params), "curtain": (params.image_size, params.image_size)}


def attrs(params: Params) -> dict:
    return balls.attrs(params)


@nb.njit(parallel=True, cache=True)
def apply_curtains(seeds, lo, hi, features, curtain):
    """Draw one rectangle per sequence into ``curtain`` and clear it from every frame of ``features``."""
    size = features.shape[-1]
    for s in nb.prange(seeds.shape[0]):
        np.random.seed(seeds[s])
        w = int(round(size * (lo + (hi - lo) * np.random.random())))
        h = int(round(size * (lo + (hi - lo) * np.random.random())))
        x0 = np.random.randint(0, size - w + 1)
        y0 = np.random.randint(0, size - h + 1)
        curtain[s] = 0
        curtain[s, y0 : y0 + h, x0 : x0 + w] = 1
        features[s, :, y0 : y0 + h, x0 : x0 + w] = 0


def make_chunk(params: Params, seed: int, split: str, start: int, stop: int,
               out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    out = empty_chunk(layout(params), stop - start, out)
    balls.make_chunk(params.balls_params(), seed, split, start, stop, out={k: out[k] for k in balls.layout(params)})
    curtain_seeds = balls.sequence_seeds(seed, split, start, stop, stream=1)
    apply_curtains(curtain_seeds, params.curtain_min, params.curtain_max, out["features"], out["curtain"])
    return out
