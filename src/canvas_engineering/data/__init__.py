"""Data for training canvas world models: the built-in push task and the user's own episodes."""

from canvas_engineering.data.episodes import (
    EpisodeDirectory,
    EpisodeError,
    episode_files,
    split_episodes,
)
from canvas_engineering.data.push import PushConfig, PushDataset, make_episode

__all__ = ["EpisodeDirectory", "EpisodeError", "PushConfig", "PushDataset", "episode_files",
           "make_episode", "split_episodes"]
