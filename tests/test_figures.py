"""Run figures without a model: figure-2 rows, the mosaic, PNG writers. (`show` on a trained run
is exercised end to end in test_evaluation_cli.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rnem_bench.data.render import palette
from rnem_bench.evaluation.figures import figure2_rows, mosaic, save_curves, save_figure2

T, K, S = 3, 2, 6


@pytest.fixture
def parts():
    rng = np.random.default_rng(0)
    features = (rng.random((T + 1, S, S)) > 0.5).astype(np.uint8)
    inputs = (rng.random((T, S, S)) > 0.5).astype(np.uint8)
    psi = np.zeros((T, K, S, S), np.float32)
    psi[:, 0, :3], psi[:, 1, 3:] = 1.0, 1.0        # component 1 top half, component 2 bottom half
    gamma = np.zeros_like(psi)
    gamma[:, 0, :3], gamma[:, 1, 3:] = 1.0, 1.0
    return features, inputs, psi, gamma


def test_rows_follow_figure2(parts):
    features, inputs, psi, gamma = parts
    rows = figure2_rows(features, inputs, psi, gamma, attention=None)
    labels = [label for label, _ in rows]
    assert labels == ["ground truth t+1", "noisy input t", "psi_1", "psi_2", "gamma", "total prediction"]
    assert all(img.shape == (T, S, S, 3) for _, img in rows)
    np.testing.assert_array_equal(rows[0][1][..., 0], features[1:])  # the target frames, not the inputs
    colours = palette(K)[1:].astype(np.float32) / 255
    gamma_rgb = dict(rows)["gamma"]
    np.testing.assert_allclose(gamma_rgb[0, 0, 0], colours[0])   # top pixels: component 1's colour
    np.testing.assert_allclose(gamma_rgb[0, -1, 0], colours[1])  # bottom pixels: component 2's
    np.testing.assert_allclose(dict(rows)["total prediction"][..., 0], (gamma * psi).sum(axis=1))


def test_attention_tints_the_other_components(parts):
    features, inputs, psi, gamma = parts
    attention = np.zeros((T, K, K), np.float32)
    attention[:, 0, 1] = 1.0  # component 1 attends fully to component 2; 2 attends to nobody
    rows = dict(figure2_rows(features, inputs, psi, gamma, attention))
    plain = dict(figure2_rows(features, inputs, psi, gamma, None))
    # focus 1's row shows component 2's pixels in component 2's colour; focus 2 sees no one
    assert rows["psi_1"][0, -1, 0].sum() > 0 and plain["psi_1"][0, -1, 0].sum() == 0
    assert rows["psi_2"][0, 0, 0].sum() == 0


def test_mosaic_and_pngs(parts, tmp_path):
    rows = figure2_rows(*parts, attention=None)
    img = mosaic(rows, pad=1)
    assert img.dtype == np.uint8 and img.shape == (len(rows) * (S + 1) - 1, T * (S + 1), 3)
    save_figure2(rows, tmp_path / "fig.png", "title")
    save_curves([{"epoch": e, "train_loss": 10.0 - e, "valid_loss": 11.0 - e} for e in range(4)], tmp_path / "c.png")
    # runs that log the validation ARI get it drawn on a second axis of the same figure
    log = [{"epoch": e, "train_loss": 10.0 - e, "valid_loss": 11.0 - e, "valid_ari_mean": 0.2 * e, "valid_ari_last": 0.25 * e}
           for e in range(1, 4)]
    save_curves(log, tmp_path / "ari.png")
    for name in ("fig.png", "c.png", "ari.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.size[0] > 100
