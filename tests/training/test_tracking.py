"""Trackers and progress: --log_with=tensorboard writes an event file holding the same losses as
metrics.jsonl, and progress written to a pipe is one plain line per log step, no '\\r'."""

import json

import pytest
from helpers.train_args import TINY

from canvas_engineering.errors import ConfigError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.tracking import hyperparameters


def test_log_with_is_validated():
    with pytest.raises(ConfigError, match=r"log_with: got 'tensorbord', expected null, "
                                          r"'tensorboard' or 'wandb'"):
        TrainConfig(log_with="tensorbord")
    assert TrainConfig().with_overrides(["--log_with=tensorboard"]).log_with == "tensorboard"
    assert TrainConfig().with_overrides(["--log_with=null"]).log_with is None


def test_hyperparameters_are_scalars():
    params = hyperparameters(TrainConfig(log_with=None, steps=1000).to_json())
    assert params["log_with"] == "null" and params["steps"] == 1000
    assert json.loads(params["regions"]) == TrainConfig().regions
    assert all(isinstance(v, (int, float, str, bool)) for v in params.values())


def test_tensorboard_events_match_metrics_and_piped_progress_is_plain(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig(**{**TINY, "steps": 6, "checkpoint_every": 6, "log_every": 2},
                         log_with="tensorboard", out=str(tmp_path / "run"))
    train(config, progress=True, evaluate_at_end=False)
    err = capsys.readouterr().err
    assert "\r" not in err  # captured stderr is no TTY: no tqdm bar
    lines = [line for line in err.splitlines() if line.startswith("train step")]
    assert [line.split()[2] for line in lines] == ["2/6", "4/6", "6/6"]

    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    events = list((tmp_path / "run/logs").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    logged = {e.step: e.value for e in acc.Scalars("loss")}
    assert sorted(logged) == [r["step"] for r in rows] == [2, 4, 6]
    for r in rows:
        assert logged[r["step"]] == pytest.approx(r["loss"], rel=1e-6)
    assert "heldout/action" in acc.Tags()["scalars"]  # the held-out curve, at the checkpoint
