"""A run's pictures: the action plot holds every held-out episode's point prediction (the ones
the summary scores), the horizon plot and the rollout GIF are written, and the GIF's frames are
the true clip beside the sampled one. (test_training_run checks draw_run writes them all.)"""

from pathlib import Path

import numpy as np
import pytest
from helpers.train_args import TINY
from PIL import Image

from canvas_engineering.training import TrainConfig
from canvas_engineering.training.loop import build
from canvas_engineering.training.report import finish
from canvas_engineering.viz.run_plots import actions, horizons, rollout_frames, rollout_gif
from canvas_engineering.viz.run_report import heldout_points, latest_summary, sample_examples


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An untrained tiny run (pictures need a model, not a good one)."""
    out = tmp_path_factory.mktemp("plots")
    config = TrainConfig(**{**TINY, "eval_episodes": 2, "eval_samples": 1}, out=str(out))
    r = build(config)
    r.model.eval()
    return r


def test_the_action_points_are_every_held_out_episode_the_summary_scores(run):
    summary, examples = finish(run, run.model, Path(run.config.out))
    points = heldout_points(run)
    assert len(points["clip"]["action"]) == summary["eval"]["episodes"] == 2  # all held out
    t0, t1 = run.layout.regions["action"].bounds[:2]
    fut = slice(run.layout.t_current - t0, t1 - t0)
    truth = points["clip"]["action"][:, t0:t1][:, fut]
    mse = float((points["pred"]["action"][:, fut] - truth).pow(2).mean())
    assert mse == pytest.approx(summary["eval"]["mse"]["action"]["model"], rel=1e-5)
    run_dir = Path(run.config.out)
    assert actions(run_dir, run, points, "point") == run_dir / "actions.png"
    assert horizons(run_dir, latest_summary(run_dir)) == run_dir / "horizon.png"
    with Image.open(rollout_gif(run_dir, run, examples)) as gif:
        assert gif.n_frames == run.layout.T


def test_rollout_frames_put_truth_left_and_the_sample_right(run):
    examples = sample_examples(run, episodes=1, seed=0)
    frames = rollout_frames(run, examples, scale=1)
    S = examples["clip"]["video"].shape[-1]
    assert len(frames) == run.layout.T and frames[0].shape == (S, 2 * S + 1, 3)
    t0 = run.layout.regions["visual"].bounds[0]
    for t, frame in enumerate(frames):
        truth = examples["clip"]["video"][0, t]
        right = examples["pred"]["visual"][0, t - t0] if t >= run.layout.t_current else truth
        as_u8 = [((x.clamp(-1, 1) + 1) / 2 * 255).round().permute(1, 2, 0).numpy()
                 for x in (truth, right)]
        assert np.array_equal(frame[:, :S], as_u8[0].astype(np.uint8))
        assert np.array_equal(frame[:, S + 1:], as_u8[1].astype(np.uint8))
        assert (frame[:, S] == 255).all()  # the white column between them


def test_the_horizon_plot_needs_a_horizon_table(tmp_path):
    assert horizons(tmp_path, None) is None and horizons(tmp_path, {"eval": {}}) is None
    table = {"eval": {"horizon": {"action": {"model": [0.1, 0.2], "floor": [0.05, 0.1]}}}}
    assert horizons(tmp_path, table) == tmp_path / "horizon.png"
