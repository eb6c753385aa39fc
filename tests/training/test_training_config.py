"""TrainConfig validation, overrides and JSON round trip."""

import pytest
import torch

from canvas_engineering.training import ConfigError, TrainConfig


def test_overrides_parse_as_the_field_types():
    c = TrainConfig().with_overrides(["--steps=7", "--lr=0.01", "--curriculum=false",
                                      "--out=runs/x", '--regions={"visual": "video"}'])
    assert (c.steps, c.lr, c.curriculum, c.out, c.regions) == (7, 0.01, False, "runs/x",
                                                              {"visual": "video"})


@pytest.mark.parametrize("arg, match", [
    ("--stepz=3", "unknown key"), ("steps=3", "expected --key=value"),
    ("--steps=three", "expected a int"), ("--curriculum=maybe", "expected a bool"),
])
def test_bad_overrides(arg, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig().with_overrides([arg])


@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("batch_size", -1), ("lr", 0.0), ("lr", float("nan")), ("prediction", "x0"),
    ("schedule", "sqrt"), ("regions", {}), ("regions", {"visual": 3}), ("seed", -1),
    ("mixed_precision", "fp8"), ("curriculum", "yes"),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_json_round_trip_and_unknown_keys(tmp_path):
    c = TrainConfig(steps=3, regions={"visual": "video", "action": "action"})
    path = tmp_path / "c.json"
    path.write_text(c.to_json())
    assert TrainConfig.from_file(path) == c
    path.write_text('{"steps": 3, "stepz": 4}')
    with pytest.raises(ValueError, match="stepz"):
        TrainConfig.from_file(path)


def test_loops_live_in_the_model_config_after_build():
    from canvas_engineering.models.scratch import BACKBONE_PRESETS
    from canvas_engineering.training.loop import build

    tiny = {"train_episodes": 4, "eval_episodes": 2}
    explicit = build(TrainConfig(**tiny, loops=1)).model
    preset = build(TrainConfig(**tiny, preset="debug", loops=None)).model  # null: the preset's
    assert explicit.config.loops == 1 and len(explicit.blocks[0].loop_emb) == 1
    assert preset.config.loops == BACKBONE_PRESETS["debug"].loops == 2
    assert TrainConfig().with_overrides(["--loops=null"]).loops is None
    with pytest.raises(ValueError, match="loops"):
        TrainConfig(loops=0)


def test_unknown_backbone_is_named():
    from canvas_engineering.training.loop import build

    with pytest.raises(ValueError, match=r"backbone: got 'dit'.*scratch"):
        build(TrainConfig(backbone="dit", train_episodes=4))


def test_the_model_and_its_noise_do_not_depend_on_the_order_regions_are_listed():
    """A config read back from JSON lists regions sorted; the run it resumes listed them in the
    canvas's order. Both must build the same parameters in the same order (the optimizer's
    state is keyed by that order) and draw the same noise."""
    import torch

    from canvas_engineering.training.batches import collate, draw_noise, to_positions
    from canvas_engineering.training.loop import build

    listed = TrainConfig(train_episodes=4, regions={"visual": "video", "action": "action",
                                                    "reward": "reward"})
    shuffled = listed.replace(regions={"reward": "reward", "action": "action",
                                       "visual": "video"})
    a, b = build(listed), build(shuffled)
    shapes = [(k, tuple(v.shape)) for k, v in a.model.named_parameters()]
    assert shapes == [(k, tuple(v.shape)) for k, v in b.model.named_parameters()]
    clip = collate(a.train_set, torch.arange(2))
    noise = [draw_noise(to_positions(clip, r.layout, r.codecs, r.config.regions), 0, 0,
                        torch.arange(2))[1] for r in (a, b)]
    for region in noise[0]:
        assert torch.equal(noise[0][region], noise[1][region]), region


def test_loss_weights_replace_the_declared_weights_the_objective_uses():
    from canvas_engineering.training.loop import build

    r = build(TrainConfig(train_episodes=4, loss_weights={"action": 5.0, "reward": 0}))
    assert r.layout.regions["action"].loss_weight == 5.0
    assert r.layout.regions["reward"].loss_weight == 0.0
    assert r.layout.regions["visual"].loss_weight == 1.0  # not named: as declared
    weights = r.diffusion.loss_weights("action")  # (n_r,): 0 on context, 5 on the future
    future = r.diffusion.noise_mask("action")
    assert set(weights[future].tolist()) == {5.0} and set(weights[~future].tolist()) == {0.0}
    with pytest.raises(ValueError, match=r"loss_weights: got \['actoin'\], expected regions"):
        build(TrainConfig(train_episodes=4, loss_weights={"actoin": 2.0}))
    with pytest.raises(ValueError, match="loss_weights: got"):
        TrainConfig(loss_weights={"action": -1})


def test_the_regression_objective_trains_only_at_t_one_where_the_target_is_minus_x0(
        tmp_path, monkeypatch):
    import torch
    from helpers.train_args import TINY

    from canvas_engineering.training import train
    from canvas_engineering.training.diffusion import CanvasDiffusion

    alpha, sigma = CanvasDiffusion(build_layout()).alpha_sigma(torch.ones(1))
    assert alpha.item() < 0.01 and sigma.item() == pytest.approx(1.0, abs=1e-4)  # v ≈ −x0
    seen, real = [], CanvasDiffusion.loss

    def loss(self, model, x0, t, noise, **kw):
        seen.append(t.clone())
        return real(self, model, x0, t, noise, **kw)

    monkeypatch.setattr(CanvasDiffusion, "loss", loss)
    config = TrainConfig(**{**TINY, "steps": 2, "checkpoint_every": 2}, objective="regression",
                         out=str(tmp_path / "run"))
    train(config, progress=False, evaluate_at_end=False)
    assert len(seen) == 2 and all(torch.equal(t, torch.ones(TINY["batch_size"])) for t in seen)
    with pytest.raises(ValueError, match="objective: got 'regression'"):
        TrainConfig(objective="regression", prediction="eps")


def build_layout():
    from canvas_engineering.spec.canvases import robot

    return robot().layout


def test_t_one_moves_a_share_of_samples_to_t_equal_one_and_leaves_the_rest_of_the_stream():
    from canvas_engineering.training.batches import draw_noise

    x0 = {"a": torch.zeros(400, 3, 2)}
    ids = torch.arange(400)
    t0, noise0 = draw_noise(x0, 7, 3, ids, 0.5)
    t1, noise1 = draw_noise(x0, 7, 3, ids, 0.5, t_one=0.5)
    moved = t1 != t0
    assert torch.equal(noise1["a"], noise0["a"])  # the noise is drawn before the extra draw
    assert bool((t1[moved] == 1).all()) and bool((t0 < 1).all())
    assert 160 <= int(moved.sum()) <= 240  # Binomial(400, 0.5): ±4 standard deviations
    t_none, _ = draw_noise(x0, 7, 3, ids, 0.5, t_one=0.0)
    assert torch.equal(t_none, t0)
    with pytest.raises(ValueError, match=r"t_one.*share in \[0, 1\]"):
        TrainConfig(t_one=1.5)
