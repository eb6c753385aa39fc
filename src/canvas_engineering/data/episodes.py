"""The user's own episodes: a directory of .npz (or HDF5) files, one episode per file.

Each file holds named arrays whose first axis is time; `arrays` maps canvas keys (region names
such as "video", "action") to array names inside the files. The directory is read and validated
once, at construction, so a bad file fails before training starts with a message naming the
file, the array, what it got and what was expected. Nothing is truncated, padded, rescaled or
skipped: values are only cast to float32 (scaling video to [-1, 1] is the caller's choice).

Clips: every window of `n_frames` consecutive frames whose start is a multiple of `stride`
(default 1: all windows, overlapping); when the stride does not reach the end of an episode, the
window ending at its last frame is added, so every frame is in some clip. Items are indexed over
all clips of all episodes, in sorted file order.

Shape glossary: T = n_frames, L = an episode's length, F... = a key's per-frame shape.
    stored array  (L, *F)     any real dtype, finite
    item[key]     (T, *F)     float32 torch tensor
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from canvas_engineering.errors import EpisodeError, bad

SUFFIXES = (".npz", ".h5", ".hdf5")


def _read_npz(file: Path, names: list[str]) -> dict[str, np.ndarray]:
    with np.load(file, allow_pickle=False) as data:
        for name in names:
            if name not in data.files:
                raise EpisodeError(f"{file}: missing array {name!r}; the file holds "
                                   f"{sorted(data.files)}")
        return {name: data[name] for name in names}


def _read_h5(file: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError as e:
        raise ImportError(f"{file}: reading HDF5 episodes needs h5py: pip install h5py") from e
    with h5py.File(file, "r") as data:
        out = {}
        for name in names:
            if name not in data or not isinstance(data[name], h5py.Dataset):
                raise EpisodeError(f"{file}: missing array {name!r}; the file holds "
                                   f"{sorted(data.keys())}")
            out[name] = data[name][()]
        return out


def _check(file: Path, key: str, name: str, arr: np.ndarray, n_frames: int,
           frame_shape: tuple | None, source: str) -> np.ndarray:
    """Validate one stored array (L, *F) against `frame_shape` (taken from `source`, for the
    message) and return it as float32."""
    where = f"{file}: array {name!r} (canvas key {key!r})"
    if arr.ndim == 0:
        raise EpisodeError(f"{where}: got a scalar, expected an array with time as first axis")
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise EpisodeError(f"{where}: got dtype {arr.dtype}, expected a real numeric dtype")
    if frame_shape is not None and tuple(arr.shape[1:]) != frame_shape:
        raise EpisodeError(f"{where}: per-frame shape {tuple(arr.shape[1:])} (rank "
                           f"{arr.ndim - 1}), expected {frame_shape} (rank {len(frame_shape)}, "
                           f"from {source})")
    if len(arr) < n_frames:
        raise EpisodeError(f"{where}: episode has {len(arr)} frames, expected at least "
                           f"n_frames={n_frames}")
    arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise EpisodeError(f"{where}: {int((~finite).sum())} non-finite values (NaN or inf; "
                           f"first at index {first}), expected finite values")
    return arr


def episode_files(path) -> list[Path]:
    """The episode files (.npz, .h5, .hdf5) in directory `path`, sorted by name. An entry with
    an episode suffix that is not a readable regular file (a directory, a dangling or
    self-referencing symlink) is an error naming it, never skipped; other names are not
    episodes and are left alone."""
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"episode directory {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"episode path {path} is not a directory")
    files = []
    for entry in sorted(path.iterdir()):
        if entry.suffix.lower() not in SUFFIXES:
            continue
        if entry.is_symlink() and not entry.exists():
            raise EpisodeError(f"{entry}: a symlink that leads to no file (dangling or "
                               "self-referencing), expected an episode file")
        if not entry.is_file():
            raise EpisodeError(f"{entry}: not a regular file, expected an episode file")
        if not os.access(entry, os.R_OK):
            raise EpisodeError(f"{entry}: not readable (permissions), expected an episode file")
        files.append(entry)
    if not files:
        raise FileNotFoundError(f"no episode files ({', '.join(SUFFIXES)}) in {path}")
    return files


def split_episodes(files: list[Path], held_out: int) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files): the `held_out` files whose names hash lowest (SHA-256)
    are held out. The split depends on the file names only, not on the seed, the file order or
    where the directory is, and it mixes episodes recorded early and late."""
    if not isinstance(held_out, int) or not 0 < held_out < len(files):
        raise bad("held_out", held_out, f"1 to {len(files) - 1} of the {len(files)} episode "
                  "files, leaving at least one for training")
    ranked = sorted(files, key=lambda f: hashlib.sha256(f.name.encode()).hexdigest())
    held = set(ranked[:held_out])
    return [f for f in files if f not in held], [f for f in files if f in held]


class EpisodeDirectory(torch.utils.data.Dataset):
    """Clips of `n_frames` frames from every episode file in `path` (see the module docstring).

    Args:
        path: a directory of .npz files (HDF5 .h5/.hdf5 too, when h5py is installed).
        arrays: canvas key -> array name inside each file, e.g. {"video": "rgb"}.
        n_frames: T, frames per clip.
        shapes: optional canvas key -> per-frame shape, e.g. {"video": (3, 24, 24)}; without it
            each key's per-frame shape must match the first episode's.
        stride: frames between the starts of consecutive clips of one episode.
        files: only these episode files of the directory (names or paths), e.g. one side of
            `split_episodes`; default all of them.
    Items: dict canvas key -> float32 tensor (T, *F).
    """

    def __init__(self, path, arrays: dict[str, str], *, n_frames: int,
                 shapes: dict[str, tuple] | None = None, stride: int = 1, files=None):
        if not isinstance(arrays, dict) or not arrays or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in arrays.items()):
            raise bad("arrays", arrays, "a non-empty dict of canvas key -> array name (str)")
        for field, value in (("n_frames", n_frames), ("stride", stride)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(field, value, "an int >= 1")
        for key, shape in (shapes or {}).items():
            if not isinstance(shape, (tuple, list)) or not all(
                    isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
                raise bad(f"shapes[{key!r}]", shape, "a tuple of ints (the per-frame shape)")
        shapes = {k: tuple(v) for k, v in (shapes or {}).items()}
        self.shape_sources = {k: "shapes" for k in shapes}
        if set(shapes) - set(arrays):
            raise bad("shapes", sorted(set(shapes) - set(arrays)),
                      f"only keys of arrays {sorted(arrays)}")
        self.path, self.arrays, self.n_frames = Path(os.fspath(path)), dict(arrays), n_frames
        listed = episode_files(self.path)
        if files is None:
            self.files = listed
        else:
            self.files = sorted(self.path / Path(f).name for f in files)
            strangers = [f.name for f in self.files if f not in listed]
            if strangers or not self.files:
                raise bad("files", strangers or files, f"some of the episode files in {self.path}")
        hdf5 = [f.name for f in self.files if f.suffix.lower() != ".npz"]
        if hdf5 and importlib.util.find_spec("h5py") is None:
            raise ImportError(f"{self.path} holds HDF5 episodes ({hdf5[0]}, ... {len(hdf5)} "
                              "files); reading them needs h5py: pip install h5py")
        self.episodes: list[dict[str, np.ndarray]] = []
        self.clips: list[tuple[int, int]] = []  # (episode index, first frame)
        for file in self.files:
            episode = self._load(file, shapes)
            length = len(next(iter(episode.values())))
            starts = list(range(0, length - n_frames + 1, stride))
            if starts[-1] != length - n_frames:
                starts.append(length - n_frames)  # keep the tail frames in a clip
            self.clips += [(len(self.episodes), s) for s in starts]
            self.episodes.append(episode)

    def _load(self, file: Path, shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """Read and validate one episode; fills `shapes` from it for keys not given."""
        names = list(dict.fromkeys(self.arrays.values()))
        read = _read_npz if file.suffix.lower() == ".npz" else _read_h5
        try:
            raw = read(file, names)
        except (EpisodeError, ImportError):
            raise
        except Exception as e:  # a corrupt or unreadable file: say which one
            raise EpisodeError(f"{file}: cannot read episode file ({e})") from e
        episode = {key: _check(file, key, name, np.asarray(raw[name]), self.n_frames,
                               shapes.get(key), self.shape_sources.get(key, ""))
                   for key, name in self.arrays.items()}
        lengths = {self.arrays[k]: len(v) for k, v in episode.items()}
        if len(set(lengths.values())) > 1:
            raise EpisodeError(f"{file}: arrays have different lengths {lengths}, expected one "
                               "length (frames) for all arrays of an episode")
        for key, arr in episode.items():
            if key not in shapes:  # later episodes must match the first one, so clips collate
                shapes[key] = tuple(arr.shape[1:])
                self.shape_sources[key] = f"the first episode, {file.name}"

        return episode

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self.clips) <= i < len(self.clips):
            raise IndexError(f"clip index {i} out of range for {len(self.clips)} clips")
        episode, start = self.clips[i]
        return {key: torch.from_numpy(arr[start:start + self.n_frames].copy())
                for key, arr in self.episodes[episode].items()}
