"""Experiments as data: Exp 6's arms have the parameter counts they claim, an interrupted
experiment resumes without retraining finished runs, and arms reach the model through
TrainConfig.backbone_options."""

from __future__ import annotations

import json

import pytest
import torch

from canvas_engineering.experiments import get_experiment, runner
from canvas_engineering.experiments.registry import PRESETS, parameters, replace_preset
from canvas_engineering.nn.looped import LoopedBlockWrapper
from canvas_engineering.training.config import TrainConfig
from canvas_engineering.training.loop import build
from canvas_engineering.training.run_files import identity


def block_params(d: int, mlp_ratio: float) -> int:
    """One CanvasDiTBlock at width d by hand: qkv + out projections (4 d² + 4 d), SwiGLU
    (3 d·h + 2 h + d with h = ratio·d), adaLN (d · 6d + 6d)."""
    h = round(mlp_ratio * d)
    return 4 * d * d + 4 * d + 3 * d * h + 2 * h + d + 6 * d * d + 6 * d


@pytest.mark.parametrize("preset", ["cpu", "paper"])
def test_exp6_arms_have_the_parameters_they_claim(preset):
    configs = get_experiment("exp6").resolve(preset)
    counts = {name: parameters(c) for name, c in configs.items()}
    width = {name: c.backbone_options["d_model"] for name, c in configs.items()}
    ratio = PRESETS[preset].backbone["mlp_ratio"]
    d = width["looped"]
    # matched parameters: a narrower 12 x 1 within 15% of the looped 3 x 4
    assert width["params"] < d
    assert abs(counts["params"] - counts["looped"]) <= 0.15 * counts["looped"]
    # matched depth: the same width with 9 more distinct blocks; loop parameters: a looped
    # block has 4 embeddings and 3 gates, a single-loop block 1 embedding
    assert width["depth"] == d
    extra = counts["depth"] - counts["looped"]
    assert extra == 9 * block_params(d, ratio) + 12 * d - 3 * (4 * d + 3)
    # the control: the same 3 blocks, one loop (no loop parameters but the embedding)
    assert counts["looped"] - counts["once"] == 3 * (3 * d + 3)


def test_backbone_options_reach_the_model():
    config = TrainConfig(train_episodes=4, loops=3, backbone_options={
        "per_token": True, "n_blocks": 1, "beta_max": 2.0})
    model = build(config).model
    wrappers = [m for m in model.modules() if isinstance(m, LoopedBlockWrapper)]
    assert len(wrappers) == 1 and wrappers[0].per_token
    assert wrappers[0].sharpening.betas() == [1.0, 1.5, 2.0]
    with pytest.raises(ValueError, match="backbone_options"):
        TrainConfig(backbone_options={"loops": 2})
    with pytest.raises(ValueError, match="backbone_options"):
        build(TrainConfig(train_episodes=4, backbone_options={"d_modle": 8}))
    # a run made before the field existed keeps its identity
    assert "backbone_options" not in identity(TrainConfig().to_json())


def test_an_interrupted_experiment_resumes_without_retraining(tmp_path, monkeypatch):
    preset = replace_preset("tiny", seeds=(0,))
    calls = []
    real_train = runner.train

    def counting(config, **kw):
        calls.append(config.out)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while training the second run
        return real_train(config, **kw)

    monkeypatch.setattr(runner, "train", counting)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment("exp16", preset=preset, out=tmp_path, log=lambda m: None)
    first = calls[0]
    saved = json.loads((tmp_path / "runs" / first.split("/")[-1] /
                        runner.RESULT).read_text())

    calls.clear()
    results = runner.run_experiment("exp16", preset=preset, out=tmp_path, log=lambda m: None)
    assert first not in calls and len(calls) == 1  # only the interrupted run trains
    assert results["arms"]["looped"]["runs"]["0"]["heldout"] == saved["heldout"]
    report = (tmp_path / "exp16" / "report.md").read_text()
    assert report.index("Verdict rules") < report.index("## Claims")  # rules before numbers
    from canvas_engineering.experiments.report import verdict_table

    assert "shared 3x4 beats unique 12x1" in verdict_table(tmp_path)
    calls.clear()
    runner.run_experiment("exp16", preset=preset, out=tmp_path, log=lambda m: None)
    assert calls == []  # everything finished: nothing trains


def test_command_line(capsys):
    from canvas_engineering.cli import main

    assert main(["experiment", "list"]) == 0
    assert "exp6" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["experiment", "exp6", "--seeds", "0,0"])
    with pytest.raises(SystemExit):
        main(["experiment", "exp99"])


def test_every_arm_is_scored_on_the_same_clips_and_noise():
    """Common random numbers: two arms of a seed see identical noised inputs and times."""
    from canvas_engineering.experiments import evaluate
    from canvas_engineering.experiments.registry import with_seed

    configs = get_experiment("exp6").resolve("tiny")
    seen = {}
    for name in ("looped", "params"):
        run = build(with_seed(configs[name], 1))
        x0 = evaluate.heldout_positions(run, 4)
        inputs = []

        def spy(x, t, model=run.model, inputs=inputs, **kw):
            inputs.append(({r: v.clone() for r, v in x.items()}, t.clone()))
            return model(x, t, **kw)

        spy.parameters = run.model.parameters
        spy.eval = run.model.eval
        evaluate.heldout_loss(run, spy, x0, draws=2)
        seen[name] = inputs
    assert len(seen["looped"]) == len(seen["params"]) == 2
    for (xa, ta), (xb, tb) in zip(seen["looped"], seen["params"]):
        assert torch.equal(ta, tb)
        assert all(torch.equal(xa[r], xb[r]) for r in xa)
    assert not torch.equal(seen["looped"][0][1], seen["looped"][1][1])  # two different draws


def test_exp12_measures_loop_states_unrolling_and_gates(tmp_path):
    preset = replace_preset("tiny", seeds=(0,))
    results = runner.run_experiment("exp12", preset=preset, out=tmp_path, log=lambda m: None)
    looped = results["arms"]["looped"]["runs"]["0"]
    assert len(looped["loop_stats"]["cosine"]) == 4  # input -> loop 1 … loop 3 -> loop 4
    assert sorted(looped["unroll"], key=int) == [str(n) for n in range(1, 9)]
    assert len(looped["loop_stats_unrolled"]["cosine"]) == 8
    assert len(looped["gates"]) == 3 and len(looped["gates"][0]) == 3  # 3 blocks, loops 2-4
    depth = results["arms"]["depth"]["runs"]["0"]
    assert len(depth["loop_stats"]["cosine"]) == 4  # 12 blocks as 3 groups of 4
    assert "unroll" not in depth
