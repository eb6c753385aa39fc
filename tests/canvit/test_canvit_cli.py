"""The `canvas-engineering canvit` face: a tiny pretrain → probe round trip, and bad input."""

import json

from canvas_engineering.cli import main


def test_pretrain_then_probe(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["canvit", "pretrain", "--out", str(out), "--steps", "2", "--scenes", "4",
                 "--batch-size", "2", "--no-progress"]) == 0
    assert (out / "model" / "model.safetensors").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert main(["canvit", "probe", "--model", str(out / "model"), "--glimpses", "2",
                 "--train-scenes", "2", "--test-scenes", "2", "--no-plots", "--probe-iters", "5",
                 "--policy", "coarse_to_fine"]) == 0
    report = json.loads((out / "probe.json").read_text())
    assert [r["t"] for r in report["trained"]["coarse_to_fine"]] == [0, 1]
    assert "untrained" in report and 0 < report["majority"] <= 1
    assert "fg acc" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["canvit", "probe", "--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "config.json" in err and len(err.splitlines()) == 1
