"""Exact event-driven 2-D hard-disc physics in Numba (shared by the balls and curtain generators).

Why event-driven: the classic bouncing-balls script takes two Euler sub-steps per frame, so fast
balls overlap, stick together or tunnel through each other. Here every frame is advanced to the
exact time of the next contact (solving |x_i + v_i t - x_j - v_j t| = r_i + r_j, or a wall), the
contact is resolved, and the rest of the frame continues from there. No contact is missed at any
speed and discs never interpenetrate (beyond float rounding).

Units are pixels and frames: the box is [0, size]^2, velocities are pixels per frame.
Collision response: ball-ball, the 1-D elastic formula for masses m_i, m_j applied to the
velocity components along the line of centres (tangential components unchanged), which conserves
momentum and kinetic energy; walls flip the outgoing component.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

MAX_EVENTS_PER_FRAME = 10_000  # far above anything a few balls produce; a guard, not a limit


@nb.njit(cache=True)
def next_event(pos, vel, radii, n, size, horizon):
    """Earliest contact within ``horizon``: (time, i, j); j = -1 x-wall, -2 y-wall, i = -1 none."""
    t_min = horizon
    ei, ej = -1, 0
    for i in range(n):
        for axis in range(2):
            v = vel[i, axis]
            if v > 0.0:
                t = (size - radii[i] - pos[i, axis]) / v
            elif v < 0.0:
                t = (radii[i] - pos[i, axis]) / v
            else:
                continue
            t = max(t, 0.0)  # already touching (rounding): resolve now
            if t < t_min:
                t_min, ei, ej = t, i, -1 - axis
    for i in range(n):
        for j in range(i + 1, n):
            dx = pos[j, 0] - pos[i, 0]
            dy = pos[j, 1] - pos[i, 1]
            dvx = vel[j, 0] - vel[i, 0]
            dvy = vel[j, 1] - vel[i, 1]
            b = dx * dvx + dy * dvy
            if b >= 0.0:
                continue  # not approaching
            dvv = dvx * dvx + dvy * dvy
            sigma = radii[i] + radii[j]
            dd = dx * dx + dy * dy - sigma * sigma
            disc = b * b - dvv * dd
            if disc < 0.0:
                continue  # they pass each other
            t = max((-b - math.sqrt(disc)) / dvv, 0.0)
            if t < t_min:
                t_min, ei, ej = t, i, j
    return t_min, ei, ej


@nb.njit(cache=True)
def resolve_pair(pos, vel, masses, i, j):
    """Elastic collision of discs i and j along their line of centres."""
    nx = pos[j, 0] - pos[i, 0]
    ny = pos[j, 1] - pos[i, 1]
    norm = math.sqrt(nx * nx + ny * ny)
    nx /= norm
    ny /= norm
    ui = vel[i, 0] * nx + vel[i, 1] * ny  # normal components
    uj = vel[j, 0] * nx + vel[j, 1] * ny
    mi, mj = masses[i], masses[j]
    wi = ((mi - mj) * ui + 2.0 * mj * uj) / (mi + mj)
    wj = ((mj - mi) * uj + 2.0 * mi * ui) / (mi + mj)
    vel[i, 0] += (wi - ui) * nx
    vel[i, 1] += (wi - ui) * ny
    vel[j, 0] += (wj - uj) * nx
    vel[j, 1] += (wj - uj) * ny


@nb.njit(cache=True)
def advance(pos, vel, radii, masses, n, size, duration, collided):
    """Move the balls for ``duration`` frames, resolving every contact exactly.

    ``collided[i]`` is set when ball i takes part in a ball-ball collision during this interval.
    Returns the number of events resolved.
    """
    remaining = duration
    events = 0
    while events < MAX_EVENTS_PER_FRAME:
        t, i, j = next_event(pos, vel, radii, n, size, remaining)
        for b in range(n):
            pos[b, 0] += vel[b, 0] * t
            pos[b, 1] += vel[b, 1] * t
        remaining -= t
        if i < 0:
            break
        events += 1
        if j >= 0:
            resolve_pair(pos, vel, masses, i, j)
            collided[i] = True
            collided[j] = True
        else:
            axis = -1 - j
            vel[i, axis] = -vel[i, axis]
    return events


def kinetic_energy(vel: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """0.5 * sum m |v|^2 over balls; vel (..., n, 2), masses (n,)."""
    return 0.5 * np.sum(masses[..., :, None] * vel**2, axis=(-2, -1))


def momentum(vel: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """sum m v over balls; vel (..., n, 2) -> (..., 2)."""
    return np.sum(masses[..., :, None] * vel, axis=-2)
