"""A LeRobot v2.1 dataset directory, generated here (parquet + mp4), reads back as the arrays
written: frames, actions and rewards, clips, the chunk layout, the split by episode, and bad
datasets refused by name."""

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")

from helpers.lerobot_data import ARRAYS, CAMERA, write_lerobot, write_video

from canvas_engineering.data.lerobot import (
    LeRobotDirectory,
    is_lerobot,
    lerobot_episodes,
    read_info,
    split_lerobot,
)
from canvas_engineering.errors import EpisodeError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    return root, write_lerobot(root, 5, length=7, chunks_size=2)  # chunks 000, 001, 002


def test_frames_actions_and_rewards_read_back_as_written(dataset):
    root, truth = dataset
    assert is_lerobot(root) and not is_lerobot(root / "data")
    ds = LeRobotDirectory(root, ARRAYS, n_frames=5, image_size=24)
    assert ds.episode_indices == [0, 1, 2, 3, 4]
    assert [f.parent.name for f in ds.files] == ["chunk-000"] * 2 + ["chunk-001"] * 2 \
        + ["chunk-002"]  # episode_index // chunks_size
    for episode, written in zip(ds.episodes, truth):  # lossless video: exact
        assert np.array_equal(episode["video"], written["video"])  # (L, 3, S, S) uint8
        assert np.array_equal(episode["action"], written["action"])
        assert np.array_equal(episode["reward"], written["reward"])
    assert len(ds) == 5 * (7 - 5 + 1)  # every window of every episode
    item = ds[4]  # episode 1, frames 1..5
    assert item["video"].shape == (5, 3, 24, 24) and item["action"].shape == (5, 2)
    assert item["reward"].shape == (5, 1)
    expected = truth[1]["video"][1:6].astype(np.float32) / 127.5 - 1
    assert np.allclose(item["video"].numpy(), expected, atol=1e-6)
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert np.array_equal(item["action"].numpy(), truth[1]["action"][1:6])


def test_the_split_holds_out_the_episodes_whose_file_names_hash_lowest(dataset):
    root, _ = dataset
    info = read_info(root)
    episodes = lerobot_episodes(root, info)
    train, held = split_lerobot(root, info, episodes, 2)
    names = {e: f"episode_{e:06d}.parquet" for e in episodes}
    ranked = sorted(episodes, key=lambda e: hashlib.sha256(names[e].encode()).hexdigest())
    assert sorted(held) == sorted(ranked[:2]) and sorted(train) == sorted(ranked[2:])
    held_set = LeRobotDirectory(root, ARRAYS, n_frames=5, image_size=24, episodes=held)
    assert held_set.episode_indices == sorted(held) and len(held_set) == 2 * 3


def test_video_of_another_size_is_refused_unless_resized(dataset):
    root, _ = dataset
    with pytest.raises(EpisodeError, match=r"frames are 24x24, expected image_size 8x8; set "
                                           r"image_size=24 .* or resize_video=true"):
        LeRobotDirectory(root, ARRAYS, n_frames=5, image_size=8)
    small = LeRobotDirectory(root, ARRAYS, n_frames=5, image_size=8, resize=True,
                             episodes=[0])
    assert small.episodes[0]["video"].shape == (7, 3, 8, 8)


def test_a_flat_colour_survives_lossy_h264_and_resizing(tmp_path):
    """Real datasets store yuv420p h264; a flat colour decodes within a few levels and a
    resize keeps it flat."""
    root = tmp_path / "ds"
    write_lerobot(root, 3, length=6, size=16)
    colour = np.array([200, 40, 90], dtype=np.uint8)
    frames = np.broadcast_to(colour, (6, 16, 16, 3)).copy()
    write_video(root / f"videos/chunk-000/{CAMERA}/episode_000000.mp4", frames, "libx264")
    ds = LeRobotDirectory(root, ARRAYS, n_frames=4, image_size=4, resize=True, episodes=[0])
    video = ds.episodes[0]["video"].astype(int)  # (6, 3, 4, 4)
    assert np.abs(video - colour[None, :, None, None]).max() <= 3


def _edit_info(root, **changes):
    info = json.loads((root / "meta/info.json").read_text())
    (root / "meta/info.json").write_text(json.dumps({**info, **changes}))


def test_bad_datasets_are_refused_by_name(tmp_path):
    root = tmp_path / "ds"
    write_lerobot(root, 3, length=6, size=16)
    with pytest.raises(EpisodeError, match=r"arrays: .* LeRobot feature names, some of .*"
                                           r"\['observation.camera'\] are not"):
        LeRobotDirectory(root, {**ARRAYS, "video": "observation.camera"}, n_frames=4,
                         image_size=16)
    with pytest.raises(EpisodeError, match="n_frames=7"):
        LeRobotDirectory(root, ARRAYS, n_frames=7, image_size=16)
    (root / f"videos/chunk-000/{CAMERA}/episode_000002.mp4").unlink()
    with pytest.raises(EpisodeError, match="episode_000002.mp4: no such video"):
        LeRobotDirectory(root, ARRAYS, n_frames=4, image_size=16)
    # A video whose frames sit at other times than the parquet rows' timestamps.
    frames = np.zeros((6, 16, 16, 3), dtype=np.uint8)
    write_video(root / f"videos/chunk-000/{CAMERA}/episode_000002.mp4", frames[:3])
    with pytest.raises(EpisodeError, match=r"no frame at timestamp 0.3000 s \(row 3"):
        LeRobotDirectory(root, ARRAYS, n_frames=4, image_size=16, episodes=[2])
    _edit_info(root, codebase_version="v3.0")
    with pytest.raises(EpisodeError, match=r"codebase_version: got 'v3.0', expected one of "
                                           r"\['v2.0', 'v2.1'\]"):
        LeRobotDirectory(root, ARRAYS, n_frames=4, image_size=16)
