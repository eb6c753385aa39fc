"""From episodes to diffusion inputs: datasets, per-step batches, region positions and noise.

Shape glossary: B batch, T clip frames, n_r positions of region r, d_r data values per position.

Everything random is a pure function of (seed, step, global sample index): a resumed run sees the
same batches and noise as an uninterrupted one, and a run split over several processes sees the
same samples as a single process with the same global batch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from canvas_engineering.data import (
    EpisodeDirectory,
    PushConfig,
    PushDataset,
    episode_files,
    split_episodes,
)
from canvas_engineering.data.codecs import RegionCodec, VideoCodec, make_codecs, region_frames
from canvas_engineering.data.lerobot import (
    LeRobotDirectory,
    is_lerobot,
    lerobot_episodes,
    read_info,
    split_lerobot,
)
from canvas_engineering.errors import bad
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.training.config import ConfigError, TrainConfig

EVAL_SEED_OFFSET = 7919  # held-out episodes come from a different seed stream
STATS_CLIPS = 256  # training clips the codecs are standardised on


def build_dataset(config: TrainConfig, split: str, n_frames: int):
    """The training or held-out episodes. Clips have the canvas's T frames.

    The built-in task draws `train_episodes` and `eval_episodes` episodes from two seed
    streams. A data directory holds out `eval_episodes` of its files (`split_episodes`: chosen
    by name, deterministically) and trains on all the others. A LeRobot dataset directory (it
    holds meta/info.json) splits the same way by episode (`split_lerobot`).
    """
    if split not in ("train", "eval"):
        raise bad("split", split, "'train' or 'eval'", ConfigError)
    if config.data == "push":
        seed = config.seed + (EVAL_SEED_OFFSET if split == "eval" else 0)
        count = config.train_episodes if split == "train" else config.eval_episodes
        env = PushConfig(n_frames=n_frames, image_size=config.image_size)
        return PushDataset(count, seed=seed, config=env)
    arrays = {key: config.arrays.get(key, key) for key in set(config.regions.values())}
    if is_lerobot(config.data):
        info = read_info(Path(config.data))
        episodes = lerobot_episodes(Path(config.data), info)
        if config.eval_episodes >= len(episodes):
            raise bad("eval_episodes", config.eval_episodes, f"fewer than the {len(episodes)} "
                      f"episodes of {config.data}: that many are held out for evaluation and "
                      "the rest train, so the dataset is too small to split", ConfigError)
        train, held = split_lerobot(Path(config.data), info, episodes, config.eval_episodes)
        return LeRobotDirectory(config.data, arrays, n_frames=n_frames,
                                image_size=config.image_size, resize=config.resize_video,
                                episodes=train if split == "train" else held)
    files = episode_files(config.data)
    if config.eval_episodes >= len(files):
        raise bad("eval_episodes", config.eval_episodes, f"fewer than the {len(files)} episode "
                  f"files in {config.data}: that many files are held out for evaluation and "
                  "the rest train, so the directory is too small to split", ConfigError)
    train_files, eval_files = split_episodes(files, config.eval_episodes)
    return EpisodeDirectory(config.data, arrays, n_frames=n_frames,
                            files=train_files if split == "train" else eval_files)


def episode_count(dataset) -> int:
    """Episodes in a dataset from `build_dataset` (a directory's clips overlap; count files)."""
    directory = isinstance(dataset, (EpisodeDirectory, LeRobotDirectory))
    return len(dataset.files) if directory else len(dataset)


def codec_specs(sample: dict[str, torch.Tensor], config: TrainConfig,
                residual_in: CanvasLayout | None = None) -> dict[str, dict]:
    """Codec per region from the shape of one episode's arrays: (T, C, S, S) is video,
    (T, dim) a vector. Given `residual_in`, the video regions of that layout that have both
    context and future frames code the future as change (`VideoCodec(residual=True)`)."""
    specs = {}
    for region, key in config.regions.items():
        if key not in sample:
            raise bad(f"regions[{region!r}]", key, f"a data key, one of {sorted(sample)}",
                      ConfigError)
        shape = tuple(sample[key].shape)
        if len(shape) == 4 and shape[2] == shape[3]:
            specs[region] = {"kind": "video", "channels": shape[1], "image_size": shape[2]}
            if residual_in is not None:
                t0, t1 = residual_in.region_spec(region).bounds[:2]
                specs[region]["residual"] = t0 < residual_in.t_current < t1
        elif len(shape) == 2:
            specs[region] = {"kind": "vector", "dim": shape[1]}
        else:
            raise bad(f"data[{key!r}] shape", shape, "(T, C, S, S) video or (T, dim) vectors",
                      ConfigError)
    return specs


def build_codecs(layout: CanvasLayout, train_set, config: TrainConfig) -> dict[str, RegionCodec]:
    """Codecs for the config's regions, standardised (`config.standardize`) on the first 256
    training clips (a pure function of the data: a resumed or evaluated run refits the same)."""
    residual_in = layout if config.residual_video else None
    codecs = make_codecs(layout, codec_specs(train_set[0], config, residual_in))
    if config.standardize:
        stats = collate(train_set, torch.arange(min(len(train_set), STATS_CLIPS)))
        for region, codec in codecs.items():
            data = region_frames(layout, region, stats[config.regions[region]])
            codec.fit(data, shared=isinstance(codec, VideoCodec))  # one scale per image
    return codecs


def batch_indices(config: TrainConfig, step: int, n_items: int) -> torch.Tensor:
    """Global batch of episode indices for `step`. (batch_size,)"""
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    return torch.randint(0, n_items, (config.batch_size,), generator=g)


def collate(dataset, indices: torch.Tensor) -> dict[str, torch.Tensor]:
    """Stack episodes into a batch of clips. key -> (B, T, ...)"""
    items = [dataset[int(i)] for i in indices]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


def to_positions(clip: dict[str, torch.Tensor], layout: CanvasLayout,
                 codecs: dict[str, RegionCodec], regions: dict[str, str]) -> dict[str, torch.Tensor]:
    """Clip arrays → per-region position data. region -> (B, n_r, d_r)"""
    return {r: codecs[r].encode(region_frames(layout, r, clip[regions[r]])) for r in codecs}


def draw_noise(x0: dict[str, torch.Tensor], seed: int, step: int, sample_ids: torch.Tensor,
               t_power: float = 1.0, t_one: float = 0.0
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Diffusion time t = u ** t_power (B,) and noise per region (B, n_r, d_r), each sample
    from its own generator seeded by (seed, step, global sample index). With `t_one` > 0, a
    share `t_one` of the samples (by one more uniform draw each, after the noise, so the rest
    of the stream is unchanged) get t = 1 instead: pure noise on the future, where the model
    learns its point prediction from the context alone."""
    t, noise = [], {r: [] for r in x0}
    for sid in sample_ids.tolist():
        g = torch.Generator().manual_seed(hash((seed, step, sid)) & 0x7FFF_FFFF_FFFF)
        t.append(torch.rand((), generator=g) ** t_power)
        for r, x in x0.items():
            noise[r].append(torch.randn(x.shape[1:], generator=g))
        if t_one > 0 and torch.rand((), generator=g) < t_one:
            t[-1] = torch.ones(())
    return torch.stack(t), {r: torch.stack(v) for r, v in noise.items()}
