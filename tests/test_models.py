"""Reference models: shapes, the paper's invariances, and the N-EM maths on hand-sized examples."""

from __future__ import annotations

import math

import pytest
import torch

from rnem_bench.errors import RnemBenchError
from rnem_bench.models import MODELS, build_model, predict, rollout
from rnem_bench.models.nem import e_step, init_gamma, nem_loss


def frames(b: int, t: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, size, size, generator=g) > 0.85).to(torch.uint8)


@pytest.mark.parametrize("size", [64, 84])
@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_every_model_both_image_sizes(name, size):
    torch.manual_seed(0)
    actions = 6 if size == 84 and name == "rnem" else 0  # invaders R-NEM takes the action
    model = build_model(name, size, n_actions=actions)
    x = frames(2, 4, size)
    acts = torch.randint(0, 6, (2, 4), dtype=torch.int16) if actions else None
    out = predict(model, x, k=3, noise=0.2, actions=acts)
    k = 1 if name in ("rnn", "lstm") else 3
    assert out["psi"].shape == out["gamma"].shape == (2, 3, k, size, size)
    assert out["psi"].dtype == torch.float32 and out["psi"].device.type == "cpu"
    assert ((out["psi"] >= 0) & (out["psi"] <= 1)).all()
    torch.testing.assert_close(out["gamma"].sum(2), torch.ones(2, 3, size, size))
    assert ("attention" in out) == name.startswith("rnem")
    if "attention" in out:
        assert out["attention"].shape == (2, 3, k, k)
    sim = rollout(model, x, k=3, n_observe=2, n_sim=2, actions=acts)
    assert sim.shape == (2, 2, size, size)


def _random_state(model, b: int, k: int, size: int):
    g = torch.Generator().manual_seed(1)
    state = torch.rand(b, k, model.cell.state_size, generator=g, dtype=torch.float64)
    psi = torch.rand(b, k, size, size, generator=g, dtype=torch.float64)
    gamma = init_gamma(b, k, size, g).double()
    x = (torch.rand(b, size, size, generator=g) > 0.8).double()
    return x, state, psi, gamma


@pytest.mark.parametrize("name", ["rnem", "rnem-noatt", "rnn-em"])
def test_permutation_equivariance_over_components(name):
    torch.manual_seed(0)
    model = build_model(name, 32).double().eval()
    x, state, psi, gamma = _random_state(model, b=2, k=4, size=32)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        s1, p1, a1 = model.transition(x, state, psi, gamma)
        s2, p2, a2 = model.transition(x, state[:, perm], psi[:, perm], gamma[:, perm])
    torch.testing.assert_close(s2, s1[:, perm])
    torch.testing.assert_close(p2, p1[:, perm])
    if a1 is not None:
        torch.testing.assert_close(a2, a1[:, perm][:, :, perm])  # alpha_ki permutes in k and i
    # ... and the information does flow between components for R-NEM: theta_k depends on theta_i.
    if name != "rnn-em":
        state_b = state.clone()
        state_b[:, 1] += 0.5
        with torch.no_grad():
            s3, _, _ = model.transition(x, state_b, psi, gamma)
        assert not torch.allclose(s3[:, 0], s1[:, 0])


def test_model_trained_at_k5_runs_at_k8():
    torch.manual_seed(0)
    model = build_model("rnem", 32)
    x = frames(2, 4, 32).float()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss = model(x[:, :-1], x[:, 1:], init_gamma(2, 5, 32))["loss"]
    loss.backward()
    opt.step()
    out = predict(model, x, k=8, noise=0.2)
    assert out["psi"].shape == (2, 3, 8, 32, 32) and out["attention"].shape == (2, 3, 8, 8)
    assert torch.isfinite(out["psi"]).all()


@pytest.mark.parametrize("name", ["rnem", "rnn-em"])
def test_no_gradient_reaches_gamma(name):
    torch.manual_seed(0)
    model = build_model(name, 32)
    x = frames(2, 4, 32).float()
    gamma0 = init_gamma(2, 3, 32).requires_grad_(True)
    out = model(x[:, :-1], x[:, 1:], gamma0, record=True)
    assert not out["gamma"].requires_grad
    out["loss"].backward()
    assert gamma0.grad is None  # gamma entered the graph only through .detach()
    assert model.decoder.convs[-1].conv.weight.grad is not None


def test_loss_and_e_step_match_hand_computation():
    # One sequence, K=2 components, a 1x2 image; target pixels [1, 0].
    psi = torch.tensor([[[[0.8, 0.1]], [[0.5, 0.3]]]])       # (B=1, K=2, H=1, W=2)
    gamma = torch.tensor([[[[0.75, 0.4]], [[0.25, 0.6]]]])
    target = torch.tensor([[[1.0, 0.0]]])                     # (B, H, W)
    ln = math.log
    # gamma * BCE(psi, x) + (1 - gamma) * KL(Bern(0) || Bern(psi)), KL = -ln(1 - psi)
    hand = (0.75 * -ln(0.8) + 0.25 * -ln(1 - 0.8)) + (0.4 * -ln(0.9) + 0.6 * -ln(0.9)) \
        + (0.25 * -ln(0.5) + 0.75 * -ln(0.5)) + (0.6 * -ln(0.7) + 0.4 * -ln(0.7))
    assert hand == pytest.approx(1.72490, abs=1e-5)
    assert nem_loss(psi, gamma, target).item() == pytest.approx(hand, rel=1e-6)
    # Divided by the batch size: two copies of the sequence give the same loss.
    assert nem_loss(psi.repeat(2, 1, 1, 1), gamma.repeat(2, 1, 1, 1), target.repeat(2, 1, 1)).item() == pytest.approx(hand, rel=1e-6)
    # E-step: pixel 0 (x=1): p = psi + 1e-6 -> 0.8/1.3; pixel 1 (x=0): p = 1 - psi -> 0.9/1.6.
    g = e_step(psi, target)
    assert g[0, 0, 0, 0].item() == pytest.approx((0.8 + 1e-6) / (1.3 + 2e-6), rel=1e-6)
    assert g[0, 0, 0, 1].item() == pytest.approx((0.9 + 1e-6) / (1.6 + 2e-6), rel=1e-6)


def test_no_attention_variant_has_alpha_one():
    torch.manual_seed(0)
    out = predict(build_model("rnem-noatt", 32), frames(2, 4, 32), k=4, noise=0.2)
    att = out["attention"]
    off = ~torch.eye(4, dtype=torch.bool)
    assert (att[..., off] == 1).all() and (att[..., ~off] == 0).all()
    with_att = predict(build_model("rnem", 32), frames(2, 4, 32), k=4, noise=0.2)["attention"][..., off]
    assert ((with_att > 0) & (with_att < 1)).all()


def test_k1_rnn_is_a_plain_recurrent_autoencoder():
    """RNN: gamma == 1, input x_t - psi_{t-1}, pre = W enc(.) + R theta + b, theta = sigmoid(pre),
    psi = dec(sigmoid(LN(pre))) (layer norm on the output, not on the recurrent connection)."""
    torch.manual_seed(0)
    model = build_model("rnn", 32).eval()
    x = frames(2, 5, 32).float()
    with torch.no_grad():
        out = model(x[:, :-1], x[:, 1:], torch.ones(2, 1, 32, 32), record=True)
        theta, psi, loss = torch.zeros(2, 250), torch.zeros(2, 1, 32, 32), 0.0
        for t in range(4):
            pre = model.cell.W(model.encoder(x[:, t : t + 1] - psi)) + model.cell.R(theta)
            theta = torch.sigmoid(pre)
            psi = model.decoder(torch.sigmoid(torch.nn.functional.layer_norm(pre, (250,), model.cell.norm.weight, model.cell.norm.bias)))
            torch.testing.assert_close(out["psi"][:, t], psi)
            loss += torch.nn.functional.binary_cross_entropy(psi[:, 0], x[:, t + 1], reduction="sum") / 2
    assert (out["gamma"] == 1).all()
    assert out["loss"].item() == pytest.approx(loss.item() / 4, rel=1e-4)


def test_k1_lstm_is_a_layer_normalised_lstm():
    """TensorFlow's LayerNormBasicLSTMCell (the original's LSTM): gates i, j, f, o each
    layer-normalised, forget bias 1, the new cell layer-normalised before tanh."""
    torch.manual_seed(0)
    model = build_model("lstm", 32).eval()
    cell = model.cell
    ln = torch.nn.functional.layer_norm
    with torch.no_grad():
        for norm in (*cell.gate_norms, cell.cell_norm):  # non-trivial scales and shifts
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        x = frames(2, 4, 32).float()
        out = model(x[:, :-1], x[:, 1:], torch.ones(2, 1, 32, 32), record=True)
        h, c, psi = torch.zeros(2, 250), torch.zeros(2, 250), torch.zeros(2, 1, 32, 32)
        for t in range(3):
            z = cell.W(model.encoder(x[:, t : t + 1] - psi)) + cell.R(h)
            i, j, f, o = (ln(z[:, n * 250 : (n + 1) * 250], (250,), norm.weight, norm.bias)
                          for n, norm in enumerate(cell.gate_norms))
            c = ln(c * torch.sigmoid(f + 1.0) + torch.sigmoid(i) * torch.tanh(j), (250,), cell.cell_norm.weight, cell.cell_norm.bias)
            h = torch.tanh(c) * torch.sigmoid(o)
            psi = model.decoder(h)
            torch.testing.assert_close(out["psi"][:, t], psi, atol=1e-5, rtol=1e-4)


def test_fixed_k_models_ignore_k_and_predict_is_deterministic():
    model = build_model("rnn", 32)
    x = frames(2, 4, 32)
    a, b = predict(model, x, k=5, noise=0.2, seed=3), predict(model, x, k=5, noise=0.2, seed=3)
    assert a["psi"].shape[2] == 1
    torch.testing.assert_close(a["psi"], b["psi"])
    assert not torch.equal(a["psi"], predict(model, x, k=5, noise=0.2, seed=4)["psi"])


def test_rollout_uses_only_the_observed_frames():
    torch.manual_seed(0)
    model = build_model("rnem", 32)
    x = frames(2, 8, 32)
    y = x.clone()
    y[:, 3:] = 1 - y[:, 3:]          # change every frame from n_observe on
    a = rollout(model, x, k=3, n_observe=3, n_sim=4)
    b = rollout(model, y, k=3, n_observe=3, n_sim=4)
    torch.testing.assert_close(a, b)
    assert a.shape == (2, 4, 32, 32) and ((a >= 0) & (a <= 1)).all()
    z = x.clone()
    z[:, 2] = 1 - z[:, 2]            # an observed frame does matter
    assert not torch.allclose(a, rollout(model, z, k=3, n_observe=3, n_sim=4))
    # with the training noise on every input: still blind to the future, reproducible per seed
    noisy = [rollout(model, v, k=3, n_observe=3, n_sim=4, noise=0.2, seed=s) for v, s in ((x, 1), (y, 1), (x, 2))]
    torch.testing.assert_close(noisy[0], noisy[1])
    assert not torch.allclose(noisy[0], a) and not torch.allclose(noisy[0], noisy[2])


def test_invaders_model_uses_the_action():
    torch.manual_seed(0)
    model = build_model("rnem", 84, n_actions=6)
    x = frames(2, 3, 84)
    a0 = torch.zeros(2, 3, dtype=torch.int16)
    p0 = predict(model, x, 2, 0.02, actions=a0)["psi"]
    p1 = predict(model, x, 2, 0.02, actions=a0 + 3)["psi"]
    assert not torch.allclose(p0, p1)
    with pytest.raises(RnemBenchError, match="actions"):
        predict(model, x, 2, 0.02)
    with pytest.raises(RnemBenchError, match="0..5"):
        predict(model, x, 2, 0.02, actions=a0 + 6)


def test_user_errors_are_one_line_rnem_bench_errors():
    with pytest.raises(RnemBenchError, match="unknown model 'nope'"):
        build_model("nope", 64)
    with pytest.raises(RnemBenchError, match="hiddden"):
        build_model("rnem", 64, hiddden=10)
    model = build_model("rnn", 32)
    with pytest.raises(RnemBenchError, match="expects 32x32"):
        predict(model, frames(1, 3, 64), 1, 0.2)
    bad = frames(1, 3, 32).float()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(RnemBenchError, match="NaN"):
        predict(model, bad, 1, 0.2)
