"""The command-line tool's default job: region maps, densities, pictures."""

import subprocess
import sys

import pytest

from canvas_engineering import CanvasSchema
from canvas_engineering.cli import main
from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.canvases import PRESETS


def test_report_prints_region_maps_densities_and_writes_pictures(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, make in PRESETS.items():
        schema = make()
        assert f"== {name}: T={schema.layout.T}" in out
        for region, spec in schema.layout.regions.items():
            share = spec.num_positions / schema.layout.num_positions
            assert f"{spec.num_positions:>9} {spec.period:>6}" in out
            assert region in out and f"{share:>7.1%}" in out
        declared = lower(schema.topology, schema.layout).density()
        assert f"mask density {declared:7.2%}" in out
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "9216" in out and "56.2%" in out  # the seed's computer-use screen: 9,216 positions


def test_densities_agree_with_the_dense_mask():
    schema = PRESETS["robot"]()
    mask = schema.topology.to_bool_mask(schema.layout)
    assert lower(schema.topology, schema.layout).density() == pytest.approx(
        mask.double().mean().item())


def test_inspect_reads_a_schema_and_rejects_a_bad_file(tmp_path, capsys):
    path = tmp_path / "robot.json"
    PRESETS["robot"]().to_json(path)
    assert CanvasSchema.from_json(path) == PRESETS["robot"]()
    assert main(["inspect", str(path)]) == 0
    assert "== robot" in capsys.readouterr().out
    path.write_text("{}")
    assert main(["inspect", str(path)]) == 2
    assert "missing keys" in capsys.readouterr().err


def test_python_dash_m_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "canvas_engineering", "report", "--canvas", "robot",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "== robot" in r.stdout and (tmp_path / "robot.png").exists()


def test_no_command_means_train_and_bad_overrides_fail_cleanly(capsys):
    assert main(["--steps=0"]) == 2  # routed to `train`, rejected before any work
    assert "steps: got 0, expected an int >= 1" in capsys.readouterr().err
    assert main(["train", "--stepz=3"]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_evaluate_needs_a_run_directory(tmp_path, capsys):
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
