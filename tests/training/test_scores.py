"""Scores against simple references written here: CRPS by its definition and by numerical
integration, calibration of spread over skill, the gap share and its interval."""

import json
import math

import pytest
import torch
from helpers.train_args import TINY

from canvas_engineering.cli import main
from canvas_engineering.training import TrainConfig, scores, train


def test_crps_of_samples_is_the_definition_averaged_per_episode():
    g = torch.Generator().manual_seed(0)
    samples, truth = torch.randn(5, 3, 4, generator=g), torch.randn(3, 4, generator=g)
    expected = torch.zeros(3)
    for e in range(3):
        for v in range(4):
            xs, y = samples[:, e, v].tolist(), truth[e, v].item()
            term1 = sum(abs(x - y) for x in xs) / 5
            term2 = sum(abs(a - b) for a in xs for b in xs) / (2 * 5 * 4)  # fair: i != j
            expected[e] += (term1 - term2) / 4
    torch.testing.assert_close(scores.crps_samples(samples, truth), expected)
    one = scores.crps_samples(samples[:1], truth)  # one sample: the absolute error
    torch.testing.assert_close(one, (samples[0] - truth).abs().mean(dim=1))


def test_gaussian_crps_matches_the_integral_of_the_squared_cdf_difference():
    mean, sigma, y = 0.3, 0.7, torch.tensor([[1.1]])
    xs = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    cdf = 0.5 * (1 + torch.erf((xs - mean) / (sigma * math.sqrt(2))))
    integral = torch.trapezoid((cdf - (xs >= 1.1).double()) ** 2, xs)
    got = scores.crps_gaussian(torch.tensor([[mean]]), sigma, y)
    assert got.item() == pytest.approx(integral.item(), abs=1e-4)


def test_a_calibrated_ensemble_has_spread_over_skill_near_one():
    g = torch.Generator().manual_seed(1)
    centre = torch.randn(2000, 8, generator=g)
    truth = centre + torch.randn(2000, 8, generator=g)  # truth and samples: same distribution
    samples = centre + torch.randn(4, 2000, 8, generator=g)
    assert scores.spread_skill(samples, truth) == pytest.approx(1.0, abs=0.03)
    assert scores.spread_skill(0.3 * samples + 0.7 * centre, truth) < 0.5  # over-confident


def test_gap_share_and_its_interval():
    baseline, floor = torch.full((50,), 1.0), torch.zeros(50)
    model = torch.linspace(0.0, 0.5, 50)  # mean 0.25: closes 75% of the gap
    gap = scores.gap_closed(baseline, model, floor)
    assert gap["share"] == pytest.approx(0.75)
    lo, hi = gap["ci95"]
    assert lo < 0.75 < hi and hi - lo < 0.2


def test_evaluate_reproduces_the_runs_own_summary_and_writes_its_own_file(tmp_path, capsys):
    config = TrainConfig(**{**TINY, "steps": 6, "checkpoint_every": 6}, out=str(tmp_path / "run"))
    train(config, progress=False)
    run = tmp_path / "run"
    written = (run / "summary.json").read_text()
    assert main(["evaluate", "--run", str(run), "--no-plots"]) == 0
    assert (run / "summary.json").read_text() == written  # not overwritten
    again = json.loads((run / "evaluation.json").read_text())
    assert again["eval"] == json.loads(written)["eval"]
    out = capsys.readouterr().out
    assert "floor" in out and "closes" in out and "crps" in out
