"""Every example in examples/ runs, at tiny sizes, as a user would run it from the repository
(in-process through runpy, so the suite does not pay a fresh interpreter per example)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


def run(monkeypatch, name: str, *argv: str) -> dict:
    monkeypatch.setattr(sys, "argv", [name, *argv])
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_every_example_is_tested():
    tested = {"quickstart.py", "graft_cogvideox.py", "define_canvas.py", "train_on_episodes.py",
              "push_env.py", "canvit_active_vision.py", "robot_proprio.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_push_env_draws_an_episode(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    run(monkeypatch, "push_env.py", "3", str(tmp_path / "push.png"))
    assert (tmp_path / "push.png").read_bytes()[:8] == PNG


def test_canvit_active_vision_looks_and_draws(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    run(monkeypatch, "canvit_active_vision.py", "--glimpses", "2", "--plot",
        str(tmp_path / "film.png"))
    assert (tmp_path / "film.png").read_bytes()[:8] == PNG


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_quickstart_grafts_and_trains(monkeypatch, capsys):
    pytest.importorskip("diffusers")
    ns = run(monkeypatch, "quickstart.py", "--steps", "12")
    out = capsys.readouterr().out
    assert "trainable parameters" in out and "loops 3" in out
    losses = [float(line.split()[-1]) for line in out.splitlines() if "action loss" in line]
    assert losses[-1] < losses[0]  # one fixed batch: the loops and the head fit it
    assert all(b.loops == 3 for b in ns["looped_blocks"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_quickstart_loads_a_local_pretrained_directory(monkeypatch, tmp_path, capsys):
    pytest.importorskip("diffusers")
    from canvas_engineering.models.cogvideox_load import save_tiny_cogvideox

    save_tiny_cogvideox(tmp_path / "cogvideox")  # a save_pretrained folder, as a user has one
    ns = run(monkeypatch, "quickstart.py", "--pretrained", str(tmp_path / "cogvideox"),
             "--steps", "2")
    import torch

    # the local model was loaded (in bf16, as the example asks), not the built-in tiny fp32 one
    assert ns["transformer"].patch_embed.proj.weight.dtype == torch.bfloat16
    assert "action loss" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_graft_cogvideox_trains_and_reloads_its_loop_checkpoint(monkeypatch, tmp_path, capsys):
    pytest.importorskip("diffusers")
    pytest.importorskip("safetensors")
    run(monkeypatch, "graft_cogvideox.py", "--steps", "4", "--batch-size", "2",
        "--checkpoint-every", "2", "--out", str(tmp_path))
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loops-000002.safetensors",
                                                          "loops-000004.safetensors"]
    assert "loops 1" in out and "loops 3" in out  # the curriculum ramps
    assert "reloaded outputs identical = True" in out


def test_define_canvas_prints_and_draws_the_three_canvases(monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run(monkeypatch, "define_canvas.py", "--out", str(tmp_path))
    out = capsys.readouterr().out
    assert "robot: 5 frames" in out and "computer_use: 16 frames" in out
    assert "16384 positions" in out
    names = {f"{c}_{k}.png" for c in ("robot", "computer_use", "multi_robot")
             for k in ("regions", "topology", "mask")}
    assert {p.name for p in tmp_path.iterdir()} == names
    assert all(p.read_bytes()[:8] == PNG for p in tmp_path.iterdir())


def test_train_on_episodes_trains_on_a_directory_of_episodes(monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data, out = tmp_path / "episodes", tmp_path / "run"
    run(monkeypatch, "train_on_episodes.py", str(data), "--make-demo", "6", "--out", str(out),
        "--steps=2", "--batch_size=2", "--loops=1", "--checkpoint_every=2", "--log_every=1",
        "--sample_steps=1", "--eval_episodes=2", "--eval_samples=1", "--train_episodes=4")
    assert len(list(data.glob("*.npz"))) == 6
    text = capsys.readouterr().out
    assert "episodes {'train': 4, 'held_out': 2}" in text
    assert {"summary.json", "config.json", "loss.png"} <= {p.name for p in out.iterdir()}


def test_robot_proprio_trains_a_user_canvas_with_a_fourth_region(monkeypatch, tmp_path, capsys):
    import json

    monkeypatch.setattr(sys, "path", list(sys.path))  # the example puts examples/ on it
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        run(monkeypatch, "robot_proprio.py", f"--out={out}", "--steps=2", "--batch_size=2",
            "--checkpoint_every=2", "--sample_steps=1", "--eval_episodes=2", "--eval_samples=1",
            "--train_episodes=4", "--preset=debug")
    assert done.value.code == 0
    summary = json.loads((out / "summary.json").read_text())
    # the fourth region is trained, predicted and scored against the task's floor
    assert set(summary["eval"]["mse"]) == {"visual", "action", "reward", "proprio"}
    assert "floor" in summary["eval"]["mse"]["proprio"]
    config = json.loads((out / "config.json").read_text())
    assert config["canvas"] == "robot_proprio:robot_proprio"
