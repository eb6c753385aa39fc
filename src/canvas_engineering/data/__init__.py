"""Data for training canvas world models: the built-in push task and the user's own episodes."""

from .episodes import EpisodeDirectory, EpisodeError
from .push import PushConfig, PushDataset, make_episode

__all__ = ["EpisodeDirectory", "EpisodeError", "PushConfig", "PushDataset", "make_episode"]
