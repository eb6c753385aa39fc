"""EpisodeDirectory: clips from .npz episode files, and a clear error for every bad input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from canvas_engineering.data import EpisodeDirectory, EpisodeError

ARRAYS = {"video": "rgb", "action": "actions"}
SHAPES = {"video": (3, 4, 4), "action": (2,)}


def write(path, name, length, **overrides):
    """An episode whose frame t holds the value 100 * episode number + t, so clips are traceable."""
    base = 100 * int(name[-1]) + np.arange(length, dtype=np.float64)
    arrays = {"rgb": np.broadcast_to(base[:, None, None, None], (length, 3, 4, 4)).astype(np.uint8),
              "actions": np.stack([base, -base], axis=1), "extra": np.zeros(length)}
    arrays.update(overrides)
    np.savez(path / f"{name}.npz", **arrays)


def test_all_windows_cover_every_episode_in_sorted_order(tmp_path):
    write(tmp_path, "ep0", 5)
    write(tmp_path, "ep1", 3)
    (tmp_path / "notes.txt").write_text("not an episode")
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=3, shapes=SHAPES)
    assert len(ds) == 3 + 1  # windows starting at 0, 1, 2 of ep0 and at 0 of ep1
    starts = [int(ds[i]["action"][0, 0]) for i in range(len(ds))]
    assert starts == [0, 1, 2, 100]
    item = ds[1]
    assert item.keys() == {"video", "action"}
    assert item["video"].dtype == torch.float32 and item["video"].shape == (3, 3, 4, 4)
    assert item["action"].shape == (3, 2)
    np.testing.assert_array_equal(item["video"][:, 0, 0, 0].numpy(), [1, 2, 3])  # not rescaled
    np.testing.assert_array_equal(item["action"][:, 1].numpy(), [-1, -2, -3])
    assert torch.equal(ds[-1]["action"], ds[3]["action"])
    with pytest.raises(IndexError, match="out of range"):
        ds[4]


def test_stride_keeps_the_tail_frames(tmp_path):
    write(tmp_path, "ep0", 7)
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=3, stride=3)
    assert [int(ds[i]["action"][0, 0]) for i in range(len(ds))] == [0, 3, 4]


def test_items_do_not_alias_the_stored_episode(tmp_path):
    write(tmp_path, "ep0", 3)
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=3)
    ds[0]["action"].fill_(7)
    assert ds[0]["action"][0, 0] == 0


def test_a_dataloader_batches_clips(tmp_path):
    write(tmp_path, "ep0", 4)
    write(tmp_path, "ep1", 4)
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["video"].shape == (4, 2, 3, 4, 4)


def test_missing_directory_and_no_episode_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EpisodeDirectory(tmp_path / "nope", ARRAYS, n_frames=2)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        EpisodeDirectory(tmp_path / "a.txt", ARRAYS, n_frames=2)
    with pytest.raises(FileNotFoundError, match=r"no episode files \(.npz, .h5, .hdf5\)"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)


def test_missing_array_names_file_and_array(tmp_path):
    write(tmp_path, "ep0", 4)
    with pytest.raises(EpisodeError, match=r"ep0.npz: missing array 'rew'.*'actions'"):
        EpisodeDirectory(tmp_path, {**ARRAYS, "reward": "rew"}, n_frames=2)


@pytest.mark.parametrize("override, message", [
    ({"actions": np.zeros((4, 3))}, (r"array 'actions' \(canvas key 'action'\): per-frame shape "
                                     r"\(3,\) \(rank 1\), expected \(2,\) "
                                     r"\(rank 1, from shapes\)")),
    ({"rgb": np.zeros((4, 4, 4))}, r"per-frame shape \(4, 4\) \(rank 2\), expected \(3, 4, 4\)"),
    ({"actions": np.zeros(())}, r"array 'actions'.*got a scalar"),
    ({"actions": np.array([["a", "b"]] * 4)}, r"array 'actions'.*got dtype <U1"),
])
def test_wrong_shape_rank_or_dtype(tmp_path, override, message):
    write(tmp_path, "ep0", 4, **override)
    with pytest.raises(EpisodeError, match=message):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2, shapes=SHAPES)


def test_without_shapes_episodes_must_match_the_first(tmp_path):
    write(tmp_path, "ep0", 4)
    write(tmp_path, "ep1", 4, actions=np.zeros((4, 5)))
    with pytest.raises(EpisodeError, match=r"ep1.npz.*\(5,\).*expected \(2,\).*first episode, "
                                           r"ep0.npz"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)


def test_short_episode_and_unequal_lengths(tmp_path):
    write(tmp_path, "ep0", 4)
    write(tmp_path, "ep1", 2, rgb=np.zeros((2, 3, 4, 4)), actions=np.zeros((2, 2)))
    with pytest.raises(EpisodeError, match=r"ep1.npz.*has 2 frames, expected at least n_frames=3"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=3)
    (tmp_path / "ep1.npz").unlink()
    write(tmp_path, "ep2", 4, actions=np.zeros((5, 2)))
    with pytest.raises(EpisodeError, match=r"ep2.npz: arrays have different lengths "
                                           r"\{'rgb': 4, 'actions': 5\}"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=3)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_values(tmp_path, bad_value):
    actions = np.zeros((4, 2))
    actions[2, 1] = bad_value
    write(tmp_path, "ep0", 4, actions=actions)
    with pytest.raises(EpisodeError, match=r"ep0.npz: array 'actions'.*1 non-finite values.*"
                                           r"first at index \(2, 1\)"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)


def test_corrupt_file_is_named(tmp_path):
    (tmp_path / "ep0.npz").write_bytes(b"not a zip file")
    with pytest.raises(EpisodeError, match=r"ep0.npz: cannot read episode file"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"arrays": {}}, r"arrays: got \{\}, expected a non-empty dict"),
    ({"n_frames": 0}, r"n_frames: got 0, expected an int >= 1"),
    ({"stride": 0}, r"stride: got 0, expected an int >= 1"),
    ({"shapes": {"reward": (1,)}}, r"shapes: got \['reward'\], expected only keys of arrays"),
    ({"shapes": {"action": 2}}, r"shapes\['action'\]: got 2, expected a tuple of ints"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    write(tmp_path, "ep0", 4)
    with pytest.raises(ValueError, match=message):
        EpisodeDirectory(tmp_path, **{"arrays": ARRAYS, "n_frames": 2, **kwargs})


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None, reason="h5py is installed")
def test_hdf5_files_without_h5py_name_the_package(tmp_path):
    write(tmp_path, "ep0", 4)
    (tmp_path / "ep1.h5").write_bytes(b"")
    with pytest.raises(ImportError, match=r"ep1.h5.*needs h5py: pip install h5py"):
        EpisodeDirectory(tmp_path, ARRAYS, n_frames=2)


def test_hdf5_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "ep0.h5", "w") as f:
        f["rgb"] = np.ones((4, 3, 4, 4))
        f["actions"] = np.arange(8.0).reshape(4, 2)
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=4, shapes=SHAPES)
    np.testing.assert_array_equal(ds[0]["action"].numpy(), np.arange(8.0).reshape(4, 2))


def test_hdf5_path_reads_through_the_h5py_api(tmp_path, monkeypatch):
    """Without h5py installed, a stand-in with the h5py calls the loader uses (File, Dataset,
    `name in f`, `f[name][()]`, `f.keys()`) checks the HDF5 branch; it stores npz bytes."""
    import sys
    import types

    class Dataset:
        def __init__(self, array):
            self.array = array

        def __getitem__(self, index):
            return self.array[index]

    class File(dict):
        def __init__(self, path, mode):
            with np.load(path) as data:
                super().__init__({k: Dataset(data[k]) for k in data.files})

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.ModuleType("h5py")
    fake.File, fake.Dataset = File, Dataset
    monkeypatch.setitem(sys.modules, "h5py", fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    write(tmp_path, "ep0", 4)
    (tmp_path / "ep0.npz").rename(tmp_path / "ep1.hdf5")
    ds = EpisodeDirectory(tmp_path, ARRAYS, n_frames=4, shapes=SHAPES)
    np.testing.assert_array_equal(ds[0]["action"][:, 0].numpy(), [0, 1, 2, 3])
    with pytest.raises(EpisodeError, match=r"ep1.hdf5: missing array 'rew'"):
        EpisodeDirectory(tmp_path, {"reward": "rew"}, n_frames=2)


@pytest.mark.parametrize("held_out", [0, 3, -1, "1"])
def test_split_refuses_a_split_that_leaves_either_side_empty(tmp_path, held_out):
    from canvas_engineering.data import split_episodes

    files = [tmp_path / f"ep{i}.npz" for i in range(3)]
    with pytest.raises(ValueError, match=f"held_out: got {held_out!r}, expected 1 to 2 of the 3"):
        split_episodes(files, held_out)
