"""LeRobot-format dataset directories (codebase v2.0 / v2.1), read locally: parquet frames with
pyarrow, mp4 videos with PyAV. Neither `lerobot` nor the network is needed.

The layout LeRobot v2.x writes (paths come from `meta/info.json`, these are its defaults):

    meta/info.json       codebase_version, fps, chunks_size, data_path, video_path, features
    meta/episodes.jsonl  one {"episode_index": i, "length": L, ...} per line
    data/chunk-000/episode_000000.parquet      one row per frame: a column per non-video
                                               feature, timestamp, frame_index, episode_index
    videos/chunk-000/<video key>/episode_000000.mp4   one video per camera and episode

with chunk = episode_index // chunks_size. `arrays` maps canvas keys to feature names, e.g.
{"video": "observation.images.top", "action": "action", "reward": "next.reward"}. A video frame
is matched to each parquet row by its timestamp (within LeRobot's default 1e-4 s).

Frames keep their size: a video whose frames are not `image_size` square is refused, unless
`resize=True` asks for them to be resized (bilinear, antialiased; the aspect ratio is not kept).
The whole split is decoded once, at construction, so a bad file fails before training starts.
Clips are those of `EpisodeDirectory` (every window of `n_frames`, the tail window added).

Shape glossary: T = n_frames, L = an episode's length, S = image_size, d a vector's size.
    video / image feature  stored (L, 3, S, S) uint8   item (T, 3, S, S) float32 in [-1, 1]
    vector feature         stored (L, d) float32       item (T, d) float32
    (a shape-[1] feature, a scalar column such as "next.reward", is (L, 1))
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from canvas_engineering.data.episodes import split_episodes
from canvas_engineering.errors import EpisodeError, bad

VERSIONS = ("v2.0", "v2.1")
TOLERANCE_S = 1e-4  # LeRobot's default tolerance between a frame's and a row's timestamp


def _need(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise ImportError(f"reading LeRobot datasets needs pyarrow and av: pip install "
                          f"'canvas-engineering[lerobot]' ({module} is missing)") from e


def is_lerobot(path) -> bool:
    """True when `path` is a LeRobot dataset directory (it holds meta/info.json)."""
    return (Path(os.fspath(path)) / "meta" / "info.json").is_file()


def read_info(root: Path) -> dict:
    """`meta/info.json`, checked for the keys and the codebase version this reader knows."""
    where = root / "meta" / "info.json"
    try:
        info = json.loads(where.read_text())
    except (OSError, ValueError) as e:
        raise EpisodeError(f"{where}: cannot read ({e}), expected LeRobot's JSON info") from None
    if not isinstance(info, dict):
        raise EpisodeError(f"{where}: got {type(info).__name__}, expected a JSON object")
    missing = sorted({"codebase_version", "fps", "chunks_size", "data_path", "features"}
                     - set(info))
    if missing:
        raise EpisodeError(f"{where}: missing keys {missing}, expected a LeRobot v2.x info.json")
    if info["codebase_version"] not in VERSIONS:
        raise bad(f"{where}: codebase_version", info["codebase_version"],
                  f"one of {list(VERSIONS)} (v3.0 packs many episodes per file and is not "
                  "read here; v1.x needs converting to v2 with lerobot)", EpisodeError)
    return info


def lerobot_episodes(root: Path, info: dict) -> list[int]:
    """The dataset's episode indices, sorted: from meta/episodes.jsonl, else 0..total-1."""
    listing = root / "meta" / "episodes.jsonl"
    if listing.is_file():
        try:
            rows = [json.loads(line) for line in listing.read_text().splitlines() if line.strip()]
            indices = sorted(int(row["episode_index"]) for row in rows)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise EpisodeError(f"{listing}: cannot read ({e!r}), expected one JSON object with "
                               "an episode_index per line") from None
    elif isinstance(info.get("total_episodes"), int):
        indices = list(range(info["total_episodes"]))
    else:
        raise EpisodeError(f"{root}: no meta/episodes.jsonl and no total_episodes in info.json, "
                           "expected one of them to list the episodes")
    if not indices or len(set(indices)) != len(indices):
        raise EpisodeError(f"{listing}: episode indices {indices[:8]}..., expected at least one, "
                           "each once")
    return indices


def episode_path(root: Path, info: dict, template_key: str, episode: int, **extra) -> Path:
    """The file of `episode` from info.json's path template ("data_path" or "video_path")."""
    chunk = episode // int(info["chunks_size"])
    return root / info[template_key].format(episode_chunk=chunk, episode_index=episode, **extra)


def split_lerobot(root: Path, info: dict, episodes: list[int],
                  held_out: int) -> tuple[list[int], list[int]]:
    """(training episodes, held-out episodes): `split_episodes`' rule on the episodes' parquet
    file names, so the `held_out` episodes whose names hash lowest are held out."""
    files = [episode_path(root, info, "data_path", e) for e in episodes]
    if len({f.name for f in files}) != len(files):
        raise EpisodeError(f"{root}: data_path {info['data_path']!r} gives two episodes the same "
                           "file name, expected a name per episode to split them by")
    train, held = split_episodes(files, held_out)
    by_file = dict(zip(files, episodes))
    return [by_file[f] for f in train], [by_file[f] for f in held]


def _vector(table, name: str, where: str) -> np.ndarray:
    """A numeric column, scalar or list per row, as (L, d) float32."""
    pa, pc = _need("pyarrow"), _need("pyarrow.compute")
    col = table.column(name).combine_chunks()
    if col.null_count:
        raise EpisodeError(f"{where}: {col.null_count} null values, expected a value per frame")
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) \
            or pa.types.is_fixed_size_list(col.type):
        widths = set(pc.list_value_length(col).to_pylist())
        if len(widths) > 1:
            raise EpisodeError(f"{where}: rows of lengths {sorted(widths)}, expected one length")
        arr = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1)
    else:
        arr = col.to_numpy(zero_copy_only=False).reshape(len(col), 1)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise EpisodeError(f"{where}: got dtype {arr.dtype}, expected numbers")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise EpisodeError(f"{where}: {int((~np.isfinite(arr)).sum())} non-finite values, "
                           "expected finite values")
    return arr


def _decode_video(file: Path, times: np.ndarray) -> np.ndarray:
    """The frame of `file` at each of `times` (seconds). (L, H, W, 3) uint8"""
    av = _need("av")
    if not file.is_file():
        raise EpisodeError(f"{file}: no such video, expected one per video feature and episode")
    try:
        with av.open(str(file)) as container:
            decoded = [(frame.time, frame.to_ndarray(format="rgb24"))
                       for frame in container.decode(video=0)]
    except Exception as e:  # a corrupt or unreadable file: say which one
        raise EpisodeError(f"{file}: cannot decode video ({e})") from e
    if not decoded:
        raise EpisodeError(f"{file}: no frames, expected {len(times)}")
    at = np.array([t for t, _ in decoded], dtype=np.float64)  # (F,)
    nearest = np.abs(at[None, :] - times[:, None]).argmin(axis=1)  # (L,)
    off = np.abs(at[nearest] - times)
    if (off > TOLERANCE_S).any():
        i = int(np.argmax(off > TOLERANCE_S))  # the first row without a frame
        raise EpisodeError(f"{file}: no frame at timestamp {times[i]:.4f} s (row {i}, first of "
                           f"{int((off > TOLERANCE_S).sum())} such rows; nearest "
                           f"{at[nearest[i]]:.4f} s, {len(decoded)} frames), expected a frame "
                           f"within {TOLERANCE_S} s of every row's timestamp")
    return np.stack([decoded[j][1] for j in nearest])


def _decode_images(table, name: str, where: str) -> np.ndarray:
    """An "image" feature (PNG/JPEG bytes per row). (L, H, W, 3) uint8"""
    from PIL import Image

    rows = table.column(name).to_pylist()
    try:
        return np.stack([np.asarray(Image.open(io.BytesIO(r["bytes"])).convert("RGB"))
                         for r in rows])
    except Exception as e:
        raise EpisodeError(f"{where}: cannot decode images ({e}), expected encoded image "
                           "bytes per row") from e


def _to_canvas(frames: np.ndarray, size: int, resize: bool, where: str) -> np.ndarray:
    """(L, H, W, 3) uint8 -> (L, 3, S, S) uint8, refusing another size unless `resize`."""
    h, w = frames.shape[1:3]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (L, 3, H, W)
    if (h, w) == (size, size):
        return x.contiguous().numpy()
    if not resize:
        raise EpisodeError(f"{where}: frames are {h}x{w}, expected image_size {size}x{size}; "
                           f"set image_size={h} to train at the native size (square frames), "
                           f"or resize_video=true to resize them to {size}x{size}")
    x = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


class LeRobotDirectory(torch.utils.data.Dataset):
    """Clips of `n_frames` frames from the episodes of a LeRobot v2.x dataset directory.

    Args:
        path: the dataset root (it holds meta/info.json).
        arrays: canvas key -> LeRobot feature name, e.g. {"video": "observation.images.top"}.
        n_frames: T, frames per clip. image_size: S, the side video frames must have.
        resize: resize video frames of another size to S x S instead of refusing them.
        episodes: only these episode indices (e.g. one side of `split_lerobot`); default all.
        stride: frames between the starts of consecutive clips of one episode.
    Items: dict canvas key -> float32 tensor, (T, 3, S, S) in [-1, 1] or (T, d).
    """

    def __init__(self, path, arrays: dict[str, str], *, n_frames: int, image_size: int,
                 resize: bool = False, episodes=None, stride: int = 1):
        pq = _need("pyarrow.parquet")
        if not isinstance(arrays, dict) or not arrays or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in arrays.items()):
            raise bad("arrays", arrays, "a non-empty dict of canvas key -> feature name (str)")
        for field, value in (("n_frames", n_frames), ("image_size", image_size),
                             ("stride", stride)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(field, value, "an int >= 1")
        self.root = Path(os.fspath(path))
        self.info = info = read_info(self.root)
        features = info["features"]
        unknown = sorted(set(arrays.values()) - set(features))
        if unknown:
            raise bad("arrays", arrays, f"LeRobot feature names, some of {sorted(features)} "
                      f"({unknown} are not)", EpisodeError)
        kinds = {key: features[name].get("dtype") for key, name in arrays.items()}
        if "video" in kinds.values() and not info.get("video_path"):
            raise EpisodeError(f"{self.root}/meta/info.json: video_path is {info.get('video_path')!r}"
                               ", expected a path template for the video features")
        everything = lerobot_episodes(self.root, info)
        self.episode_indices = everything if episodes is None else sorted(episodes)
        strangers = sorted(set(self.episode_indices) - set(everything))
        if strangers or not self.episode_indices:
            raise bad("episodes", strangers or episodes, f"some of the episodes of {self.root}")
        self.arrays, self.n_frames = dict(arrays), n_frames
        self.files = [episode_path(self.root, info, "data_path", e) for e in self.episode_indices]
        self.episodes: list[dict[str, np.ndarray]] = []
        self.clips: list[tuple[int, int]] = []  # (episode index in self.episodes, first frame)
        for episode, file in zip(self.episode_indices, self.files):
            data = self._load(pq, episode, file, kinds, image_size, resize)
            length = len(next(iter(data.values())))
            starts = list(range(0, length - n_frames + 1, stride))
            if starts[-1] != length - n_frames:
                starts.append(length - n_frames)  # keep the tail frames in a clip
            self.clips += [(len(self.episodes), s) for s in starts]
            self.episodes.append(data)

    def _load(self, pq, episode: int, file: Path, kinds: dict, size: int,
              resize: bool) -> dict[str, np.ndarray]:
        """Read and check one episode: its parquet rows and its videos."""
        if not file.is_file():
            raise EpisodeError(f"{file}: no such file, expected episode {episode}'s frames")
        try:
            table = pq.read_table(file)
        except Exception as e:
            raise EpisodeError(f"{file}: cannot read parquet ({e})") from e
        names = [n for k, n in self.arrays.items() if kinds[k] != "video"] + ["frame_index"]
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise EpisodeError(f"{file}: missing columns {missing}, the file holds "
                               f"{table.column_names}")
        length = table.num_rows
        if length < self.n_frames:
            raise EpisodeError(f"{file}: episode has {length} frames, expected at least "
                               f"n_frames={self.n_frames}")
        order = table.column("frame_index").to_numpy()
        if not np.array_equal(order, np.arange(length)):
            raise EpisodeError(f"{file}: frame_index is not 0..{length - 1} in order, expected "
                               "one row per frame, sorted")
        if "episode_index" in table.column_names:
            seen = set(table.column("episode_index").to_pylist())
            if seen != {episode}:
                raise EpisodeError(f"{file}: episode_index {sorted(seen)}, expected {episode}")
        times = table.column("timestamp").to_numpy().astype(np.float64) \
            if "timestamp" in table.column_names else np.arange(length) / float(self.info["fps"])
        data = {}
        for key, name in self.arrays.items():
            where = f"{file}: feature {name!r} (canvas key {key!r})"
            if kinds[key] == "video":
                video = episode_path(self.root, self.info, "video_path", episode, video_key=name)
                frames = _decode_video(video, times)
                data[key] = _to_canvas(frames, size, resize, f"{video} (canvas key {key!r})")
            elif kinds[key] == "image":
                data[key] = _to_canvas(_decode_images(table, name, where), size, resize, where)
            else:
                data[key] = _vector(table, name, where)
        return data

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self.clips) <= i < len(self.clips):
            raise IndexError(f"clip index {i} out of range for {len(self.clips)} clips")
        episode, start = self.clips[i]
        out = {}
        for key, arr in self.episodes[episode].items():
            x = torch.from_numpy(arr[start:start + self.n_frames].copy())
            out[key] = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x  # video → [-1, 1]
        return out
