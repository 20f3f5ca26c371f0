"""Bouncing balls with variable mass (tasks ``balls4`` and ``balls678``), simulated in Numba.

Defaults keep the look of the classic bouncing-balls script that the paper builds on: a world 10
units wide mapped onto the image, light balls of radius 1.2 units, heavy balls 1.25x larger and 6x
heavier, picked at random per ball, speeds of about 0.25 units per frame. What we fix (docs/design.md,
"Physics lineage"): exact event-driven collisions instead of two Euler sub-steps (no overlap, no
sticking, no tunnelling, see ``physics.py``), and each ball's speed drawn on its own rather than
from a velocity array rescaled to a shared norm, so speeds do not depend on the ball count.

Frames are binary discs: a pixel belongs to a ball when its centre lies within the radius.
Per frame t we store features, groups (0 background, ball id 1..n, 255 where discs overlap on a
pixel), collisions (pixels of balls that took part in a ball-ball collision during (t-1, t]) and
the states (positions and velocities in pixels and pixels per frame).

Randomness: every sequence is drawn from its own seed, a hash of (seed, split, index), so a
sequence's bytes never depend on chunking or on how many workers produced it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numba as nb
import numpy as np

from rnem_bench.dataset_format import OVERLAP, SPLITS
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators.chunks import empty_chunk
from rnem_bench.generators.physics import advance


@dataclass(frozen=True)
class Params:
    n_balls: tuple[int, int] = (4, 4)   # inclusive range of balls per sequence
    steps: int = 30                     # model steps; steps + 1 frames are stored
    image_size: int = 64
    world_size: float = 10.0            # classic script's world width, in units
    radius: float = 1.2                 # light ball radius, in units
    heavy_radius_ratio: float = 1.25
    heavy_mass_ratio: float = 6.0
    heavy_prob: float = 0.5             # chance that a ball is heavy (0: all light, equal masses)
    speed: float = 0.25                 # mean ball speed, units per frame
    speed_jitter: float = 0.5           # speed ~ U[speed * (1 - j), speed * (1 + j)]

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_balls", tuple(int(v) for v in self.n_balls))

    @property
    def frames(self) -> int:
        return self.steps + 1

    @property
    def scale(self) -> float:
        """Pixels per world unit."""
        return self.image_size / self.world_size

    @property
    def radii_px(self) -> tuple[float, float]:
        light = self.radius * self.scale
        return light, light * self.heavy_radius_ratio

    def capacity(self) -> int:
        """Most balls that surely fit: one per cell of a square grid of cells 2 r_max wide."""
        r_max = max(self.radii_px) if self.heavy_prob > 0 else self.radii_px[0]  # heavy may be the smaller
        return int(self.image_size // (2 * r_max)) ** 2

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise RnemBenchError(f"{f.name.replace('_', '-')} must be a finite number, got {value}")
        lo, hi = self.n_balls
        if lo < 1 or hi < lo:
            raise RnemBenchError(f"--n-balls range {lo}-{hi} is invalid: need 1 <= min <= max")
        if self.steps < 1:
            raise RnemBenchError(f"steps must be >= 1, got {self.steps}")
        if not 8 <= self.image_size <= 1024:
            raise RnemBenchError(f"image size must be in 8..1024, got {self.image_size}")
        if not 0.0 <= self.heavy_prob <= 1.0:
            raise RnemBenchError(f"heavy_prob must be in [0, 1], got {self.heavy_prob}")
        if self.radius <= 0 or self.heavy_radius_ratio <= 0 or self.heavy_mass_ratio <= 0 or self.world_size <= 0:
            raise RnemBenchError("radius, world size and heavy ratios must be positive")
        if self.radii_px[0] < 0.5:
            raise RnemBenchError(f"radius {self.radius} units is below half a pixel at image size {self.image_size}")
        if self.speed < 0 or not 0.0 <= self.speed_jitter <= 1.0:
            raise RnemBenchError(f"speed must be >= 0 and speed_jitter in [0, 1], got {self.speed}, {self.speed_jitter}")
        if hi > min(self.capacity(), 254):
            raise RnemBenchError(
                f"{hi} balls do not fit in a {self.image_size}px image at radius {self.radius} units "
                f"(at most {min(self.capacity(), 254)}); lower --n-balls or --radius"
            )


def layout(params: Params) -> dict[str, tuple[int, ...]]:
    t, s, n = params.frames, params.image_size, params.n_balls[1]
    return {
        "features": (t, s, s),
        "groups": (t, s, s),
        "collisions": (t, s, s),
        "positions": (t, n, 2),
        "velocities": (t, n, 2),
        "radii": (n,),
        "masses": (n,),
        "n_objects": (),
    }


def attrs(params: Params) -> dict:
    return {"has_groups": True, "n_max": params.n_balls[1]}


# --------------------------------------------------------------------------------- randomness
@nb.njit(cache=True)
def _splitmix64(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return x ^ (x >> np.uint64(31))


def sequence_seeds(seed: int, split: str, start: int, stop: int, stream: int = 0) -> np.ndarray:
    """One 32-bit seed per sequence, a hash of (seed, split, index, stream)."""
    base = np.uint64((seed * 1_000_003 + SPLITS.index(split) * 7919 + stream * 104_729) & 0xFFFFFFFFFFFFFFFF)
    out = np.empty(stop - start, dtype=np.uint32)
    for k, index in enumerate(range(start, stop)):
        out[k] = np.uint32(int(_splitmix64(_splitmix64(base) ^ np.uint64(index))) & 0xFFFFFFFF)
    return out


# ------------------------------------------------------------------------------- initial state
@nb.njit(cache=True)
def _place(pos, radii, n, size):
    """Random non-overlapping centres inside the box: rejection sampling, grid as a fallback."""
    for _ in range(50):  # whole restarts
        ok = True
        for i in range(n):
            placed = False
            for _ in range(200):
                x = radii[i] + np.random.random() * (size - 2 * radii[i])
                y = radii[i] + np.random.random() * (size - 2 * radii[i])
                free = True
                for j in range(i):
                    d = math.hypot(x - pos[j, 0], y - pos[j, 1])
                    if d < radii[i] + radii[j] + 0.5:
                        free = False
                        break
                if free:
                    pos[i, 0], pos[i, 1] = x, y
                    placed = True
                    break
            if not placed:
                ok = False
                break
        if ok:
            return
    # Dense packing: random cells of a grid whose cells are wider than any ball (validate()
    # guarantees enough cells), jittered within the slack.
    r_max = radii[:n].max()
    cells = int(size // (2 * r_max))
    cell = size / cells
    order = np.random.permutation(cells * cells)
    for i in range(n):
        cx, cy = order[i] % cells, order[i] // cells
        slack = cell / 2 - radii[i]
        pos[i, 0] = (cx + 0.5) * cell + (np.random.random() * 2 - 1) * slack
        pos[i, 1] = (cy + 0.5) * cell + (np.random.random() * 2 - 1) * slack


@nb.njit(cache=True)
def _render(pos, radii, n, size, collided, feat, grp, col):
    """Rasterise discs into one frame: features 0/1, groups ids/255, collision mask."""
    for b in range(n):
        r = radii[b]
        x0 = max(int(math.floor(pos[b, 0] - r)), 0)
        x1 = min(int(math.ceil(pos[b, 0] + r)), size - 1)
        y0 = max(int(math.floor(pos[b, 1] - r)), 0)
        y1 = min(int(math.ceil(pos[b, 1] + r)), size - 1)
        r2 = r * r
        for py in range(y0, y1 + 1):
            dy = py + 0.5 - pos[b, 1]
            for px in range(x0, x1 + 1):
                dx = px + 0.5 - pos[b, 0]
                if dx * dx + dy * dy < r2:
                    feat[py, px] = 1
                    grp[py, px] = b + 1 if grp[py, px] == 0 else OVERLAP
                    if collided[b]:
                        col[py, px] = 1


@nb.njit(parallel=True, cache=True)
def simulate(seeds, n_min, n_max, size, r_light, r_heavy, m_heavy, heavy_prob, speed, jitter, frames,
             features, groups, collisions, positions, velocities, radii_out, masses_out, n_objects):
    """Simulate and render one chunk of sequences, each from its own seed, into the given arrays.

    features, groups, collisions (N, T, S, S) uint8; positions, velocities (N, T, n_max, 2),
    radii, masses (N, n_max) float32 (NaN where absent); n_objects (N,) uint8. The arrays may hold
    garbage: each sequence clears its own rows (in parallel, which is where the pages get touched).
    """
    n_seq = seeds.shape[0]
    for s in nb.prange(n_seq):
        features[s] = 0
        groups[s] = 0
        collisions[s] = 0
        positions[s] = np.nan
        velocities[s] = np.nan
        radii_out[s] = np.nan
        masses_out[s] = np.nan
        np.random.seed(seeds[s])  # the thread's own generator, reseeded per sequence
        n = np.random.randint(n_min, n_max + 1)
        radii = np.empty(n)
        masses = np.empty(n)
        for b in range(n):
            heavy = np.random.random() < heavy_prob
            radii[b] = r_heavy if heavy else r_light
            masses[b] = m_heavy if heavy else 1.0
        pos = np.zeros((n, 2))
        vel = np.zeros((n, 2))
        _place(pos, radii, n, size)
        for b in range(n):
            angle = np.random.random() * 2 * math.pi
            v = speed * (1.0 + jitter * (2 * np.random.random() - 1))
            vel[b, 0], vel[b, 1] = v * math.cos(angle), v * math.sin(angle)
        collided = np.zeros(n, np.bool_)
        for t in range(frames):
            if t > 0:
                collided[:] = False
                advance(pos, vel, radii, masses, n, float(size), 1.0, collided)
            positions[s, t, :n] = pos
            velocities[s, t, :n] = vel
            _render(pos, radii, n, size, collided, features[s, t], groups[s, t], collisions[s, t])
        radii_out[s, :n] = radii
        masses_out[s, :n] = masses
        n_objects[s] = n


def make_chunk(params: Params, seed: int, split: str, start: int, stop: int,
               out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    out = empty_chunk(layout(params), stop - start, out)
    r_light, r_heavy = params.radii_px
    simulate(
        sequence_seeds(seed, split, start, stop), params.n_balls[0], params.n_balls[1], params.image_size,
        r_light, r_heavy, params.heavy_mass_ratio, params.heavy_prob, params.speed * params.scale,
        params.speed_jitter, params.frames, *out.values(),
    )
    return out
