"""Training on a directory of the user's episode files: held-out files are never trained on,
the split is reported, and a bad directory or array mapping is refused by name."""

import os

import numpy as np
import pytest
from helpers.train_args import TINY

from canvas_engineering.cli import main
from canvas_engineering.data import EpisodeError, PushConfig, PushDataset
from canvas_engineering.errors import ConfigError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.batches import build_dataset


def write_episodes(directory, count: int, length: int = 7) -> None:
    """Push-task episodes saved under the user's own array names."""
    directory.mkdir(parents=True, exist_ok=True)
    episodes = PushDataset(count, seed=5, config=PushConfig(n_frames=length, image_size=24))
    for i in range(count):
        item = episodes[i]
        np.savez(directory / f"episode_{i:02d}.npz", rgb=item["video"].numpy(),
                 act=item["action"].numpy(), rew=item["reward"].numpy())


ARRAYS = {"video": "rgb", "action": "act", "reward": "rew"}


def config_for(tmp_path, **changes) -> TrainConfig:
    return TrainConfig(**{**TINY, "steps": 4, "eval_episodes": 2, "data": str(tmp_path / "eps"),
                          "arrays": ARRAYS, **changes}, out=str(tmp_path / "run"))


def test_held_out_files_are_not_trained_on_and_the_split_is_reported(tmp_path):
    write_episodes(tmp_path / "eps", 6)
    config = config_for(tmp_path)
    train_set = build_dataset(config, "train", 5)
    eval_set = build_dataset(config, "eval", 5)
    assert len(eval_set.files) == 2 and len(train_set.files) == 4
    assert not set(train_set.files) & set(eval_set.files)
    assert set(train_set.files) | set(eval_set.files) == set((tmp_path / "eps").iterdir())
    assert len(eval_set) == 2 * (7 - 5 + 1)  # every window of the two held-out episodes

    # The split depends on the file names only: a renamed directory splits the same way.
    os.rename(tmp_path / "eps", tmp_path / "moved")
    moved = build_dataset(config.replace(data=str(tmp_path / "moved")), "eval", 5)
    assert [f.name for f in moved.files] == [f.name for f in eval_set.files]

    summary = train(config.replace(data=str(tmp_path / "moved")), progress=False)
    assert summary["episodes"] == {"train": 4, "held_out": 2}
    assert summary["eval"]["episodes"] == len(eval_set)  # the held-out clips, no others


def test_a_directory_too_small_to_split_is_refused(tmp_path):
    write_episodes(tmp_path / "eps", 2)
    with pytest.raises(ConfigError, match="eval_episodes: got 2, expected fewer than the 2 "
                                          "episode files .* too small to split"):
        train(config_for(tmp_path), progress=False)


def test_an_arrays_key_that_is_no_data_key_lists_the_valid_ones(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"arrays: .* expected keys among the data keys of "
                                          r"regions, \['action', 'reward', 'video'\] "
                                          r"\(\['vidoe'\] are not\)"):
        config_for(tmp_path, arrays={"vidoe": "rgb"})
    with pytest.raises(ConfigError, match="with data='push'"):
        TrainConfig(arrays={"video": "rgb"})
    assert main(["train", "--data=x", '--arrays={"vidoe": "rgb"}']) == 2
    assert "['vidoe'] are not" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda d: os.symlink(d / "gone.npz", d / "dangling.npz"), "dangling.npz: a symlink"),
    (lambda d: os.symlink(d / "loop.npz", d / "loop.npz"), "loop.npz: a symlink that leads"),
    (lambda d: (d / "nested.npz").mkdir(), "nested.npz: not a regular file"),
])
def test_an_episode_entry_that_is_not_a_readable_file_is_named(tmp_path, make, message):
    write_episodes(tmp_path / "eps", 4)
    make(tmp_path / "eps")
    with pytest.raises(EpisodeError, match=message):
        build_dataset(config_for(tmp_path), "train", 5)
