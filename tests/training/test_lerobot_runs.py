"""Training on a LeRobot dataset directory: build_dataset detects it, splits it by episode,
never trains on the held-out episodes, and a run trains and evaluates on it."""

import json

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")

from helpers.lerobot_data import ARRAYS, write_lerobot
from helpers.train_args import TINY

from canvas_engineering.cli import main
from canvas_engineering.data.lerobot import LeRobotDirectory
from canvas_engineering.errors import ConfigError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.batches import build_dataset


def config_for(tmp_path, **changes) -> TrainConfig:
    return TrainConfig(**{**TINY, "steps": 3, "eval_episodes": 2, "eval_samples": 1,
                          "data": str(tmp_path / "ds"), "arrays": ARRAYS, **changes},
                       out=str(tmp_path / "run"))


def test_a_lerobot_dataset_splits_by_episode_and_trains(tmp_path):
    truth = write_lerobot(tmp_path / "ds", 6, length=7)
    config = config_for(tmp_path)
    train_set = build_dataset(config, "train", 5)
    eval_set = build_dataset(config, "eval", 5)
    assert isinstance(train_set, LeRobotDirectory)
    assert len(train_set.episode_indices) == 4 and len(eval_set.episode_indices) == 2
    assert sorted(train_set.episode_indices + eval_set.episode_indices) == list(range(6))
    # The held-out clips are the held-out episodes' frames, nothing else.
    first = eval_set.episode_indices[0]
    assert (eval_set[0]["action"].numpy() == truth[first]["action"][:5]).all()

    summary = train(config, progress=False)
    assert summary["episodes"] == {"train": 4, "held_out": 2}
    assert summary["eval"]["episodes"] == len(eval_set) == 2 * 3


def test_too_few_episodes_and_a_size_mismatch_are_refused(tmp_path, capsys):
    write_lerobot(tmp_path / "ds", 2, length=7)
    with pytest.raises(ConfigError, match="eval_episodes: got 2, expected fewer than the 2 "
                                          "episodes .* too small to split"):
        build_dataset(config_for(tmp_path), "train", 5)
    args = ["train", f"--data={tmp_path / 'ds'}", f"--out={tmp_path / 'run'}",
            "--eval_episodes=1", "--image_size=16", f"--arrays={json.dumps(ARRAYS)}"]
    assert main(args) == 2
    assert "frames are 24x24, expected image_size 16x16" in capsys.readouterr().err
