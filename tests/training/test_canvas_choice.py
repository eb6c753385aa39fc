"""Any declared canvas trains: a built-in name, a schema JSON file, or a typed schema compiled
by a named function; configs are JSON or TOML files."""

import numpy as np
import pytest
from helpers.train_args import TINY

from canvas_engineering import CanvasLayout, CanvasSchema, CanvasTopology, Connection
from canvas_engineering.data import PushConfig, PushDataset
from canvas_engineering.errors import ConfigError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.canvas_choice import resolve_canvas
from canvas_engineering.training.loop import build


def episodes(directory, count=5):
    directory.mkdir()
    data = PushDataset(count, seed=2, config=PushConfig(n_frames=6, image_size=24))
    for i in range(count):
        np.savez(directory / f"ep{i}.npz", **{k: v.numpy() for k, v in data[i].items()})


def run(tmp_path, canvas: str, regions: dict):
    config = TrainConfig(**{**TINY, "steps": 3, "checkpoint_every": 3, "eval_episodes": 2,
                            "eval_samples": 1}, canvas=canvas, regions=regions,
                         data=str(tmp_path / "eps"), out=str(tmp_path / "run"))
    return config, train(config, progress=False)


def test_a_schema_json_canvas_trains(tmp_path):
    layout = CanvasLayout(T=5, H=7, W=6, d_model=64, t_current=2, regions={
        "camera": (0, 5, 0, 6, 0, 6), "act": (0, 5, 6, 7, 0, 1)})
    path = tmp_path / "arm.json"
    CanvasSchema(layout, CanvasTopology([Connection("camera", "camera"),
                                         Connection("act", "camera")])).to_json(path)
    episodes(tmp_path / "eps")
    config, summary = run(tmp_path, str(path), {"camera": "video", "act": "action"})
    assert build(config).layout == layout
    assert set(summary["eval"]["mse"]) == {"camera", "act"}


def test_a_typed_schema_canvas_trains(tmp_path):
    episodes(tmp_path / "eps")
    config, summary = run(tmp_path, "helpers.typed_canvas:arm",
                          {"camera": "video", "action": "action"})
    layout = build(config).layout
    assert layout.T == 5 and layout.t_current == 2
    assert layout.region_size("camera") == 5 * 36 and layout.region_size("action") == 5
    assert set(summary["eval"]["mse"]) == {"camera", "action"}


@pytest.mark.parametrize("name, message", [
    ("robt", "canvas: got 'robt', expected a built-in canvas"),
    ("missing.json", "no such file"),
    ("helpers.typed_canvas:nope", "has no attribute 'nope'"),
    ("helpers.typed_canvas:NOT_COMPILED", "it names a Arm .a typed schema must be compiled"),
])
def test_a_bad_canvas_is_named(name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_canvas(name)


def test_toml_and_json_config_files_agree(tmp_path):
    (tmp_path / "run.toml").write_text('steps = 7\nregions = { visual = "video", action = '
                                       '"action" }\nlr = 0.001\n')
    (tmp_path / "run.json").write_text('{"steps": 7, "regions": {"visual": "video", '
                                       '"action": "action"}, "lr": 0.001}')
    toml, json_ = (TrainConfig.from_file(tmp_path / f"run.{s}") for s in ("toml", "json"))
    assert toml == json_ and toml.steps == 7 and toml.regions == {"visual": "video",
                                                                   "action": "action"}
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(ConfigError, match="config .*bad.toml"):
        TrainConfig.from_file(tmp_path / "bad.toml")
