"""CanvasDiffusion: schedules, noise on output positions only, the loss against an explicit
per-position reference, the DDIM sampler, and an overfitting smoke test."""

from __future__ import annotations

import pytest
import torch

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.scratch import CanvasWorldModel, backbone_config
from canvas_engineering.spec.canvases import robot
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.training.diffusion import CanvasDiffusion

SCHEMA = robot()
LAYOUT, TOPOLOGY = SCHEMA.layout, SCHEMA.topology
CODECS = make_codecs(LAYOUT, {"visual": {"kind": "video", "channels": 1, "image_size": 12},
                              "action": {"kind": "vector", "dim": 2},
                              "reward": {"kind": "vector", "dim": 1}})


def batch(B: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {r: torch.randn(B, c.num_positions, c.position_dim, generator=g)
            for r, c in CODECS.items()}


def model(seed: int = 0) -> CanvasWorldModel:
    torch.manual_seed(seed)
    m = CanvasWorldModel(LAYOUT, TOPOLOGY, CODECS, backbone_config("debug"))
    with torch.no_grad():  # nonzero decoders, so the loss reference sees real predictions
        for dec in m.decoders.values():
            dec.weight.normal_(0, 0.1)
    return m


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedules_are_variance_preserving_from_clean_to_noise(schedule):
    a, s = CanvasDiffusion(LAYOUT, schedule=schedule).alpha_sigma(torch.linspace(0, 1, 101))
    assert torch.allclose(a * a + s * s, torch.ones(101), atol=1e-6)
    assert a[0] == 1 and s[0] == 0
    assert (a.diff() < 0).all() and (s.diff() > 0).all()
    assert 1e-3 < a[-1] < 1e-2  # log-SNR(1) ≈ −10: pure noise, yet ε → x0 stays finite


def test_noise_mask_is_the_output_part_of_each_region():
    d = CanvasDiffusion(LAYOUT)
    visual = d.noise_mask("visual").view(5, 36)
    assert not visual[:2].any() and visual[2:].all()  # frames ≥ t_current = 2
    assert d.noise_mask("action").tolist() == [False, False, True, True, True]
    assert d.noise_mask("reward").tolist() == [True]
    weight = LAYOUT.regions["action"].loss_weight  # as the canvas declares it
    assert d.loss_weights("action").tolist() == [0, 0, weight, weight, weight]


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_q_sample_noises_only_output_positions(schedule):
    d, x0, noise = CanvasDiffusion(LAYOUT, schedule=schedule), batch(), batch(seed=1)
    t = torch.tensor([0.3, 0.9])
    xt = d.q_sample(x0, t, noise)
    a, s = d.alpha_sigma(t)
    for r in x0:
        m = d.noise_mask(r)
        assert torch.equal(xt[r][:, ~m], x0[r][:, ~m])  # context: bit-identical
        expected = a[:, None, None] * x0[r][:, m] + s[:, None, None] * noise[r][:, m]
        assert torch.allclose(xt[r][:, m], expected)
        assert (xt[r][:, m] != x0[r][:, m]).all()


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_loss_equals_an_explicit_per_position_reference(prediction):
    d, m = CanvasDiffusion(LAYOUT, prediction=prediction), model()
    x0, noise, t = batch(), batch(seed=1), torch.tensor([0.2, 0.7])
    total, per_region = d.loss(m, x0, t, noise)
    with torch.no_grad():
        pred = m(d.q_sample(x0, t, noise), t)
    weights, output = LAYOUT.loss_weight_mask(), LAYOUT.output_mask()
    num = den = 0.0
    for r in x0:
        r_num = r_den = 0.0
        for b in range(2):
            a, s = (float(v) for v in d.alpha_sigma(t[b]))
            for p, pos in enumerate(LAYOUT.region_index_tensor(r).tolist()):
                if not output[pos]:
                    continue
                eps, clean = noise[r][b, p], x0[r][b, p]
                target = eps if prediction == "eps" else a * eps - s * clean
                w = float(weights[pos])
                r_num += w * float(((pred[r][b, p] - target) ** 2).mean())
                r_den += w
        assert per_region[r].item() == pytest.approx(r_num / r_den, rel=1e-5)
        num, den = num + r_num, den + r_den
    assert total.item() == pytest.approx(num / den, rel=1e-5)
    total.backward()  # and it trains the model


def test_loss_needs_a_weighted_output_position():
    layout = CanvasLayout(T=2, H=2, W=2, t_current=1, regions={
        "ctx": RegionSpec((0, 2, 0, 1, 0, 2), is_output=False),
        "out": RegionSpec((0, 2, 1, 2, 0, 2), loss_weight=0.0)})
    d = CanvasDiffusion(layout)
    x0 = {"ctx": torch.randn(2, 4, 3), "out": torch.randn(2, 4, 1)}
    with pytest.raises(ValueError, match="no diffused position with a loss weight > 0"):
        d.loss(lambda x, t: x, x0, torch.rand(2), x0)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_with_an_oracle_model_recovers_x0(prediction):
    """A model that knows x0 predicts the exact target; DDIM must then return x0."""
    d, x0 = CanvasDiffusion(LAYOUT, prediction=prediction), batch()

    def oracle(xt, t):
        a, s = (v[:, None, None] for v in d.alpha_sigma(t))
        eps = {r: (xt[r] - a * x0[r]) / s for r in xt}
        return eps if prediction == "eps" else {r: a * eps[r] - s * x0[r] for r in xt}

    out = d.sample(oracle, x0, steps=4, generator=torch.Generator().manual_seed(0))
    for r in x0:
        assert torch.allclose(out[r], x0[r], atol=1e-3)


def test_sample_keeps_context_and_is_deterministic_for_a_generator():
    d, m, ctx = CanvasDiffusion(LAYOUT), model(), batch()
    with torch.no_grad():
        for blk in m.blocks:
            blk.loop_gate.fill_(0.3)
    run = [d.sample(m, ctx, steps=3, generator=torch.Generator().manual_seed(s),
                     model_kwargs={"loops": 2})
           for s in (7, 7, 8)]
    for r in ctx:
        mask = d.noise_mask(r)
        assert torch.equal(run[0][r][:, ~mask], ctx[r][:, ~mask])
        assert torch.equal(run[0][r], run[1][r])
        assert not torch.equal(run[0][r][:, mask], run[2][r][:, mask])
        assert run[0][r].shape == ctx[r].shape


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"schedule.*'sigmoid'.*\['cosine', 'linear'\]"):
        CanvasDiffusion(LAYOUT, schedule="sigmoid")
    with pytest.raises(ValueError, match=r"prediction.*'x0'.*\['eps', 'v'\]"):
        CanvasDiffusion(LAYOUT, prediction="x0")
    d, x0, t = CanvasDiffusion(LAYOUT), batch(), torch.rand(2)
    with pytest.raises(ValueError, match=r"noise: got regions \['action', 'visual'\]"):
        d.q_sample(x0, t, {r: x0[r] for r in ("visual", "action")})
    with pytest.raises(ValueError, match=r"noise\['action'\].*\(2, 5, 2\)"):
        d.q_sample(x0, t, {**x0, "action": torch.zeros(2, 5, 3)})
    with pytest.raises(ValueError, match="region.*'camera'.*'visual'"):
        d.q_sample({"camera": x0["visual"]}, t, {"camera": x0["visual"]})
    with pytest.raises(ValueError, match=r"t.*\(2,\)"):
        d.q_sample(x0, torch.rand(3), x0)
    with pytest.raises(ValueError, match="steps"):
        d.sample(model(), x0, steps=0)


def test_overfits_one_fixed_batch():
    """A debug model on one fixed tiny batch (fixed t and noise) drives the loss down."""
    m, d = model(), CanvasDiffusion(LAYOUT)
    x0, noise, t = batch(), batch(seed=1), torch.tensor([0.25, 0.75])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, _ = d.loss(m, x0, t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, losses[::10]
