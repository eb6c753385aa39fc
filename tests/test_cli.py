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


@pytest.mark.parametrize("argv, message", [
    (["sample", "--run", "r", "--episodes", "0"], "argument --episodes: got 0, expected an int >= 1"),
    (["sample", "--run", "r", "--episodes", "-1"], "argument --episodes: got -1, expected an int >= 1"),
    (["sample", "--run", "r", "--episodes", "two"], "argument --episodes: got 'two', expected an int"),
    (["sample", "--run", "r", "--seed", "-3"], "argument --seed: got -3, expected an int >= 0"),
    (["report", "--canvas", "robt"], "argument --canvas: invalid choice: 'robt'"),
    (["evaluate"], "the following arguments are required: --run"),
])
def test_bad_arguments_are_refused_with_usage_and_no_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_paths_are_one_line_errors_and_debug_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    for argv, message in [
        (["evaluate", "--run", str(missing)], f"{missing}: no config.json"),
        (["sample", "--run", str(missing)], f"{missing}: no config.json"),
        (["inspect", str(missing / "schema.json")], "No such file or directory"),
        (["train", "--resume", f"--checkpoint={missing}.safetensors", f"--out={missing}"],
         "cannot read the run's config"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    (tmp_path / "file").write_text("")
    assert main(["report", "--canvas", "robot", "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(ValueError, match="no config.json"):
        main(["evaluate", "--debug", "--run", str(missing)])


def test_sample_refuses_more_episodes_than_the_run_holds_out(tmp_path, capsys):
    from helpers.train_args import overrides

    out = tmp_path / "run"
    assert main(["train", "--no-progress", *overrides(steps=2, out=str(out))]) == 0
    capsys.readouterr()
    assert main(["sample", "--run", str(out), "--episodes", "5"]) == 2  # the run holds out 4
    assert "episodes: got 5, expected 1 to the run's 4 held-out episodes" in \
        capsys.readouterr().err
