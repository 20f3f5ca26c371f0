"""Ball physics: pymunk as an independent oracle, conservation laws, no overlap, no escape."""

from __future__ import annotations

import numpy as np
import pymunk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnem_bench.generators import balls
from rnem_bench.generators.physics import advance, kinetic_energy, momentum, resolve_pair

SIZE = 64.0


def ours(pos, vel, radii, masses, frames):
    pos, vel = np.array(pos, float), np.array(vel, float)
    radii, masses = np.array(radii, float), np.array(masses, float)
    out = [pos.copy()]
    collided = np.zeros(len(pos), bool)
    for _ in range(frames):
        advance(pos, vel, radii, masses, len(pos), SIZE, 1.0, collided)
        out.append(pos.copy())
    return np.array(out), vel


def pymunk_sim(pos, vel, radii, masses, frames, substeps=400):
    """The same scene in pymunk: elasticity 1, no friction, no gravity, static walls."""
    space = pymunk.Space()
    space.gravity = (0, 0)
    space.collision_slop = 0.0
    space.iterations = 30
    corners = [(0, 0), (SIZE, 0), (SIZE, SIZE), (0, SIZE)]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        wall = pymunk.Segment(space.static_body, a, b, 0.0)
        wall.elasticity, wall.friction = 1.0, 0.0
        space.add(wall)
    bodies = []
    for p, v, r, m in zip(pos, vel, radii, masses):
        body = pymunk.Body(m, pymunk.moment_for_circle(m, 0, r))
        body.position, body.velocity = tuple(p), tuple(v)
        shape = pymunk.Circle(body, r)
        shape.elasticity, shape.friction = 1.0, 0.0
        space.add(body, shape)
        bodies.append(body)
    out = [np.array(pos, float)]
    for _ in range(frames):
        for _ in range(substeps):
            space.step(1.0 / substeps)
        out.append(np.array([b.position for b in bodies]))
    return np.array(out)


def test_wall_bounces_match_pymunk():
    args = ([[20.0, 30.0]], [[3.1, -2.3]], [7.68], [1.0], 60)  # ~8 wall bounces
    np.testing.assert_allclose(ours(*args)[0], pymunk_sim(*args), atol=0.05)


@pytest.mark.parametrize("masses", [(1.0, 1.0), (1.0, 6.0)])
def test_ball_collision_matches_pymunk(masses):
    # An off-centre collision between two balls (light/heavy radii), followed by wall bounces.
    args = ([[16.0, 30.0], [46.0, 35.0]], [[1.5, 0.2], [-1.2, -0.1]], [7.68, 9.6], list(masses), 30)
    traj, _ = ours(*args)
    ref = pymunk_sim(*args)
    np.testing.assert_allclose(traj, ref, atol=0.25)
    # the collision really happened: the light ball was deflected
    assert not np.allclose(traj[-1], ours([[16.0, 30.0]], [[1.5, 0.2]], [7.68], [1.0], 30)[0][-1], atol=1.0)


@settings(max_examples=200, deadline=None)
@given(
    p=st.lists(st.floats(-5, 5), min_size=4, max_size=4),
    v=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
    m=st.tuples(st.floats(0.1, 10), st.floats(0.1, 10)),
)
def test_pair_collision_conserves_momentum_and_energy(p, v, m):
    pos = np.array([[30.0, 30.0], [30.0 + p[0], 30.0 + p[1]]])
    if np.linalg.norm(pos[1] - pos[0]) < 1e-3:
        pos[1, 0] += 1.0
    vel = np.array(v, float).reshape(2, 2)
    masses = np.array(m)
    before = momentum(vel, masses), kinetic_energy(vel, masses)
    resolve_pair(pos, vel, masses, 0, 1)
    np.testing.assert_allclose(momentum(vel, masses), before[0], atol=1e-9)
    np.testing.assert_allclose(kinetic_energy(vel, masses), before[1], rtol=1e-9, atol=1e-12)


def test_momentum_conserved_through_collisions_away_from_walls():
    # A crowd in a box so large that no ball reaches a wall in 40 frames: only ball-ball contacts.
    rng = np.random.default_rng(0)
    n = 12
    pos = np.stack(np.meshgrid(np.arange(4) * 25.0 + 400, np.arange(3) * 25.0 + 400), -1).reshape(-1, 2)[:n]
    vel = rng.normal(0, 1.5, (n, 2))
    radii = np.where(rng.random(n) < 0.5, 7.68, 9.6)
    masses = np.where(radii > 8, 6.0, 1.0)
    p0, e0 = momentum(vel, masses), kinetic_energy(vel, masses)
    collided = np.zeros(n, bool)
    hits = 0
    for _ in range(40):
        collided[:] = False
        advance(pos, vel, radii, masses, n, 1000.0, 1.0, collided)
        hits += collided.sum()
    assert hits > 0
    np.testing.assert_allclose(momentum(vel, masses), p0, atol=1e-9)
    np.testing.assert_allclose(kinetic_energy(vel, masses), e0, rtol=1e-9)


@pytest.mark.parametrize("n_balls,speed", [((4, 4), 0.25), ((6, 8), 0.25), ((3, 5), 3.0)])
def test_generated_sequences_conserve_energy_and_never_overlap_or_escape(n_balls, speed):
    # speed 3.0 units/frame is ~19 px/frame, faster than a ball's diameter: nothing may tunnel.
    params = balls.Params(n_balls=n_balls, steps=40, speed=speed)
    c = balls.make_chunk(params, seed=7, split="train", start=0, stop=48)
    for s in range(48):
        n = int(c["n_objects"][s])
        vel, pos = c["velocities"][s, :, :n].astype(float), c["positions"][s, :, :n].astype(float)
        masses, radii = c["masses"][s, :n].astype(float), c["radii"][s, :n].astype(float)
        energy = kinetic_energy(vel, masses)
        np.testing.assert_allclose(energy, energy[0], rtol=1e-5)
        assert np.all(pos >= radii[None, :, None] - 1e-3) and np.all(pos <= 64 - radii[None, :, None] + 1e-3)
        d = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)
        sigma = radii[:, None] + radii[None, :]
        off_diag = ~np.eye(n, dtype=bool)
        assert np.all(d[:, off_diag] >= sigma[off_diag] - 1e-3)


def test_heavy_balls_are_six_times_heavier_and_larger():
    c = balls.make_chunk(balls.Params(), seed=0, split="train", start=0, stop=64)
    heavy = c["masses"] == 6.0
    assert heavy.any() and (~heavy).any()
    np.testing.assert_allclose(c["radii"][heavy] / c["radii"][~heavy].max(), 1.25, rtol=1e-6)
    assert set(np.unique(c["masses"])) == {1.0, 6.0}


def test_speed_does_not_depend_on_ball_count():
    speeds = []
    for n in (2, 8):
        c = balls.make_chunk(balls.Params(n_balls=(n, n), heavy_prob=0.0), seed=0, split="train", start=0, stop=300)
        speeds.append(np.linalg.norm(c["velocities"][:, 0, :n], axis=-1).mean())
    np.testing.assert_allclose(speeds[0], speeds[1], rtol=0.08)
    np.testing.assert_allclose(speeds[0], 0.25 * 6.4, rtol=0.08)  # 0.25 units/frame at 6.4 px/unit
