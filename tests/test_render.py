"""Rendering: features, groups and collision masks agree with the states, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from rnem_bench.dataset_format import OVERLAP
from rnem_bench.errors import RnemBenchError
from rnem_bench.generators import balls, curtain, empty_chunk


def discs(pos: np.ndarray, radii: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W) bool: pixel centres strictly inside each disc (independent numpy rasteriser)."""
    c = np.arange(size) + 0.5
    dx = c[None, None, :] - pos[:, 0, None, None]
    dy = c[None, :, None] - pos[:, 1, None, None]
    return dx**2 + dy**2 < radii[:, None, None] ** 2


def test_groups_and_features_match_discs():
    c = balls.make_chunk(balls.Params(n_balls=(6, 8)), seed=3, split="test", start=0, stop=16)
    for s in range(16):
        n = int(c["n_objects"][s])
        for t in range(0, 31, 5):
            d = discs(c["positions"][s, t, :n].astype(np.float64), c["radii"][s, :n].astype(np.float64), 64)
            count = d.sum(0)
            expected = np.where(count > 1, OVERLAP, (d * np.arange(1, n + 1)[:, None, None]).sum(0))
            # float32 states vs float64 simulation: allow pixels whose centre lies on a disc edge
            mismatch = expected != c["groups"][s, t]
            assert mismatch.sum() <= 2, (s, t, mismatch.sum())
            np.testing.assert_array_equal(c["features"][s, t], c["groups"][s, t] > 0)


def test_collision_masks_mark_exactly_the_colliding_balls():
    c = balls.make_chunk(balls.Params(n_balls=(6, 8)), seed=1, split="train", start=0, stop=32)
    checked = 0
    for s in range(32):
        n = int(c["n_objects"][s])
        v = c["velocities"][s, :, :n]
        # Walls only flip a component's sign, so |vx| and |vy| change only in ball-ball collisions.
        changed = np.any(~np.isclose(np.abs(v[1:]), np.abs(v[:-1]), rtol=0, atol=1e-6), axis=-1)  # (T-1, n)
        assert not c["collisions"][s, 0].any()
        for t in range(1, 31):
            g, col = c["groups"][s, t], c["collisions"][s, t].astype(bool)
            for b in range(n):
                own = g == b + 1
                if own.any():
                    assert col[own].all() == changed[t - 1, b] and col[own].any() == changed[t - 1, b]
                    checked += changed[t - 1, b]
            assert not (col & (g == 0)).any()
    assert checked > 10  # the data really contains collisions


def test_curtain_hides_features_but_not_groups():
    params = curtain.Params()
    c = curtain.make_chunk(params, seed=0, split="train", start=0, stop=32)
    assert set(np.unique(c["masses"][~np.isnan(c["masses"])])) == {1.0}  # equal masses
    hidden_seen = 0
    for s in range(32):
        cur = c["curtain"][s].astype(bool)
        ys, xs = np.nonzero(cur)
        assert cur.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # one filled rectangle
        frac_w, frac_h = (np.ptp(xs) + 1) / 64, (np.ptp(ys) + 1) / 64
        assert 0.29 <= frac_w <= 0.51 and 0.29 <= frac_h <= 0.51
        visible = (c["groups"][s] > 0) & ~cur[None]
        np.testing.assert_array_equal(c["features"][s].astype(bool), visible)
        hidden_seen += ((c["groups"][s] > 0) & cur[None]).sum()
    assert hidden_seen > 0


def test_curtain_balls_follow_the_balls_physics():
    p = curtain.Params()
    a = curtain.make_chunk(p, seed=5, split="valid", start=0, stop=8)
    b = balls.make_chunk(p.balls_params(), seed=5, split="valid", start=0, stop=8)
    np.testing.assert_array_equal(a["groups"], b["groups"])
    np.testing.assert_array_equal(a["positions"], b["positions"])


def test_reused_buffers_give_the_same_bytes():
    """Workers refill one buffer per chunk: every element must be rewritten, whatever it held."""
    for gen, params in ((balls, balls.Params(n_balls=(2, 5))), (curtain, curtain.Params())):
        fresh = gen.make_chunk(params, seed=2, split="train", start=8, stop=16)
        garbage = empty_chunk(gen.layout(params), 8)
        for a in garbage.values():
            a.view(np.uint8)[...] = 0xAB  # NaN-like floats, out-of-range labels
        filled = gen.make_chunk(params, seed=2, split="train", start=8, stop=16, out=garbage)
        assert filled is garbage
        for name in fresh:
            np.testing.assert_array_equal(filled[name], fresh[name], err_msg=name)


def test_a_mismatched_buffer_is_refused():
    wrong = empty_chunk(balls.layout(balls.Params()), 4)
    with pytest.raises(RnemBenchError, match="buffer 'features'"):
        balls.make_chunk(balls.Params(), seed=0, split="train", start=0, stop=8, out=wrong)
