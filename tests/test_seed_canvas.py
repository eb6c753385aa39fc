"""Seed 000's canvas snippets ("How the canvas works" … "Canvas schemas"), run as written with
placeholders (visual_embs, embed, per_position_loss, `...` in embeddings) filled in."""

import torch

from canvas_engineering import (
    CanvasLayout,
    CanvasSchema,
    CanvasTopology,
    Connection,
    FunctionEmbedder,
    RegionSpec,
    SemanticEmbedding,
    SpatiotemporalCanvas,
    TemporalFill,
    transfer_distance,
)


def test_robot_canvas_create_place_extract():
    layout = CanvasLayout(
        T=5, H=8, W=8, d_model=256,
        regions={
            "visual": (0, 5, 0, 6, 0, 6),  # 180 positions — video patches
            "action": (0, 5, 6, 7, 0, 1),  # 5 positions — per-frame actions
            "reward": (2, 3, 7, 8, 0, 1),  # 1 position — scalar reward
        },
        t_current=2,  # t >= 2 is future (diffusion output)
    )
    canvas = SpatiotemporalCanvas(layout)
    batch = canvas.create_empty(batch_size=4)  # (4, 320, 256)
    visual_embs = torch.randn(4, 180, 256)
    batch = canvas.place(batch, visual_embs, "visual")  # write video patches
    actions = canvas.extract(batch, "action")  # read action predictions

    assert batch.shape == (4, 320, 256)
    assert actions.shape == (4, 5, 256)
    assert len(layout.region_indices("visual")) == 180
    assert len(layout.region_indices("action")) == 5
    assert len(layout.region_indices("reward")) == 1
    # reward occupies t=2, h=7, w=0: flat index 2·64 + 7·8 + 0
    assert layout.region_indices("reward") == [2 * 64 + 7 * 8]
    placed = canvas.extract(batch, "visual")
    structure = canvas.structure()[layout.region_index_tensor("visual")]
    assert torch.equal(placed, visual_embs + structure)  # content plus the region's structure


def computer_use_layout():
    return CanvasLayout(
        T=16, H=32, W=32, d_model=768,
        regions={
            "screen": (0, 16, 0, 24, 0, 24),  # 9,216 positions (56%)
            "mouse": (0, 16, 24, 26, 0, 4),  # 128 positions
            "keyboard": (0, 16, 26, 28, 0, 4),  # 128 positions
            "llm": (0, 16, 28, 32, 0, 8),  # 512 positions
        },
    )


def test_computer_use_canvas_sizes():
    layout = computer_use_layout()
    assert layout.num_positions == 16_384
    sizes = {n: len(layout.region_indices(n)) for n in layout.regions}
    assert sizes == {"screen": 9216, "mouse": 128, "keyboard": 128, "llm": 512}
    assert round(100 * sizes["screen"] / layout.num_positions) == 56


def test_declarative_region_frequency():
    layout = CanvasLayout(
        T=16, H=32, W=32, d_model=768,
        regions={
            "screen": (0, 16, 0, 24, 0, 24),  # raw tuple — period=1 default
            "mouse": RegionSpec(
                bounds=(0, 16, 24, 26, 0, 4),
                period=1, loss_weight=2.0,  # high-freq, emphasize accuracy
            ),
            "thought": RegionSpec(
                bounds=(0, 4, 28, 32, 0, 8),
                period=4, loss_weight=1.0,  # low-freq: 4 slots → frames 0,4,8,12
            ),
            "task_prompt": RegionSpec(
                bounds=(0, 1, 26, 28, 0, 4),
                is_output=False,  # input-only conditioning, no loss
            ),
        },
    )
    weights = layout.loss_weight_mask("cpu")  # (N,) tensor
    per_position_loss = torch.rand(layout.num_positions)
    loss = (per_position_loss * weights).sum() / weights.sum()

    assert weights.shape == (16_384,)
    expected = torch.zeros(16, 32, 32)
    expected[0:16, 0:24, 0:24] = 1.0
    expected[0:16, 24:26, 0:4] = 2.0
    expected[0:4, 28:32, 0:8] = 1.0
    assert torch.equal(weights, expected.flatten())  # task_prompt (26:28, 0:4) stays 0
    assert weights.sum() == 9216 + 2 * 128 + 128
    assert torch.isfinite(loss)
    assert layout.regions["screen"] == RegionSpec(bounds=(0, 16, 0, 24, 0, 24))

    assert layout.real_frame("thought", canvas_t=2) == 8
    assert layout.canvas_frame("thought", real_t=8) == 2
    assert layout.canvas_frame("thought", real_t=7) is None
    assert [layout.real_frame("thought", t) for t in range(4)] == [0, 4, 8, 12]


def test_multi_robot_topology_snippet():
    topology = CanvasTopology(connections=[
        Connection(src="robot1_cam", dst="robot1_cam"),
        Connection(src="robot1_action", dst="robot1_action"),
        Connection(src="robot2_cam", dst="robot2_cam"),
        Connection(src="robot2_action", dst="robot2_action"),
        Connection(src="shared_task", dst="shared_task"),
        Connection(src="robot1_action", dst="robot1_cam"),
        Connection(src="robot2_action", dst="robot2_cam"),
        Connection(src="robot1_cam", dst="robot2_cam", weight=0.5),
        Connection(src="robot2_cam", dst="robot1_cam", weight=0.5),
        Connection(src="shared_task", dst="robot1_cam"),
        Connection(src="shared_task", dst="robot2_cam"),
        Connection(src="robot1_action", dst="shared_task"),
        Connection(src="robot2_action", dst="shared_task"),
    ])
    layout = CanvasLayout(T=4, H=8, W=8, d_model=64, regions={
        "robot1_cam": (0, 4, 0, 4, 0, 4), "robot2_cam": (0, 4, 0, 4, 4, 8),
        "robot1_action": (0, 4, 4, 5, 0, 2), "robot2_action": (0, 4, 4, 5, 2, 4),
        "shared_task": (0, 4, 5, 6, 0, 4)})
    mask = topology.to_attention_mask(layout)  # (N, N) float
    ops = topology.attention_ops()  # [(src, dst, weight, fn), ...]
    assert mask.shape == (256, 256)
    assert len(ops) == 13 and ops[7] == ("robot1_cam", "robot2_cam", 0.5, "cross_attention")
    c1, c2 = layout.region_indices("robot1_cam"), layout.region_indices("robot2_cam")
    assert torch.all(mask[c1][:, c2] == 0.5)
    a1 = layout.region_indices("robot1_action")
    assert torch.all(mask[a1][:, c2] == 0)  # robot1's actions do not read robot2's camera


def test_convenience_constructors():
    assert len(CanvasTopology.dense(["a", "b", "c"]).connections) == 9
    assert {(c.src, c.dst) for c in CanvasTopology.isolated(["a", "b", "c"]).connections} == {
        ("a", "a"), ("b", "b"), ("c", "c")}
    hub = {(c.src, c.dst) for c in CanvasTopology.hub_spoke("task", ["r1", "r2"]).connections}
    assert {("task", "r1"), ("r1", "task"), ("task", "task"), ("r2", "r2")} <= hub
    assert ("r1", "r2") not in hub
    chain = {(c.src, c.dst) for c in CanvasTopology.causal_chain(["obs", "plan", "act"]).connections}
    assert {("plan", "obs"), ("act", "plan")} <= chain and ("obs", "plan") not in chain
    ct = CanvasTopology.causal_temporal(["obs", "act"]).connections
    self_edges = [(c.t_src, c.t_dst) for c in ct if c.src == c.dst == "obs"]
    assert sorted(self_edges) == [(0, -1), (0, 0)]  # both self edges kept, offsets distinct
    assert all(c.t_dst in (0, -1) for c in ct)


def test_temporal_connectivity_snippets():
    Connection(src="cam", dst="action")
    Connection(src="cam", dst="action", t_src=0, t_dst=0)
    Connection(src="action", dst="obs", t_src=0, t_dst=-1)
    c = Connection(src="thought", dst="thought", t_src=None, t_dst=None)
    assert c.dense_in_time
    Connection(src="daily", dst="quarterly_gdp", t_src=0, t_dst=0, temporal_fill=TemporalFill.HOLD)
    Connection(src="monitor", dst="alerts", t_src=0, t_dst=0, temporal_fill=TemporalFill.DROP)
    c = Connection(src="fast_ctrl", dst="temperature", t_src=0, t_dst=0,
                   temporal_fill=TemporalFill.INTERPOLATE, interpolation_order=2)
    assert c.interpolation_order == 2


def test_attention_function_types_resolution():
    layout = CanvasLayout(
        T=8, H=16, W=16, d_model=512,
        regions={
            "visual": RegionSpec(bounds=(0, 8, 0, 12, 0, 12), default_attn="cross_attention"),
            "proprio": RegionSpec(bounds=(0, 8, 12, 13, 0, 2), default_attn="linear_attention"),
            "thought": RegionSpec(bounds=(0, 4, 13, 15, 0, 4), default_attn="mamba"),
            "goal": RegionSpec(bounds=(0, 1, 15, 16, 0, 4), default_attn="cross_attention",
                               is_output=False),
        },
    )
    topology = CanvasTopology(connections=[
        Connection(src="visual", dst="visual"),
        Connection(src="proprio", dst="proprio"),
        Connection(src="thought", dst="thought"),
        Connection(src="goal", dst="goal"),
        Connection(src="visual", dst="goal", fn="gated"),
        Connection(src="thought", dst="visual", fn="perceiver"),
        Connection(src="proprio", dst="visual", fn="pooling"),
        Connection(src="thought", dst="thought", fn="copy", t_src=0, t_dst=-1),
    ])
    ops = topology.attention_ops(layout)
    assert ops[:3] == [("visual", "visual", 1.0, "cross_attention"),
                       ("proprio", "proprio", 1.0, "linear_attention"),
                       ("thought", "thought", 1.0, "mamba")]
    assert [op[3] for op in ops[4:]] == ["gated", "perceiver", "pooling", "copy"]
    # without a layout, region defaults are unknown: the global default applies
    assert topology.attention_ops()[1][3] == "cross_attention"
    assert topology.resolve_fn(topology.connections[1], layout) == "linear_attention"


def _vectors(texts: list[str], dim: int = 16) -> list[list[float]]:
    """Stand-in for an API's sentence embeddings: a deterministic vector per text."""
    out = []
    for text in texts:
        g = torch.Generator().manual_seed(sum(map(ord, text)))
        out.append(torch.randn(dim, generator=g).tolist())
    return out


# The seed's `embed`: a user's API embedder, declared under the model it names. Its outputs carry
# that name, so the regions below record it and transfer_distance may compare them.
embed = FunctionEmbedder(_vectors, model="openai/text-embedding-3-small")


def test_semantic_types_and_transfer_distance():
    cam = RegionSpec(
        bounds=(0, 8, 0, 12, 0, 12),
        semantic_type="RGB video 224x224 30fps from front-facing monocular camera",
        semantic_embedding=embed("RGB video 224x224 30fps from front-facing monocular camera"),
        embedding_model="openai/text-embedding-3-small",
    )
    depth = RegionSpec(
        bounds=(0, 8, 0, 12, 0, 12),
        semantic_type="Metric depth map 224x224 from front-facing monocular camera",
        semantic_embedding=embed("Metric depth map 224x224 from front-facing monocular camera"),
    )
    joints = RegionSpec(
        bounds=(0, 8, 12, 13, 0, 1),
        semantic_type="7-DOF joint angles at 30Hz",
        semantic_embedding=embed("7-DOF joint angles at 30Hz"),
    )
    a, b = torch.tensor(cam.semantic_embedding), torch.tensor(depth.semantic_embedding)
    expected = 1 - float(torch.nn.functional.cosine_similarity(a, b, dim=0))
    assert abs(transfer_distance(cam, depth) - expected) < 1e-6
    assert transfer_distance(cam, cam) < 1e-9
    assert transfer_distance(cam, joints) == transfer_distance(joints, cam)
    assert depth.embedding_model == joints.embedding_model == "openai/text-embedding-3-small"


def test_canvas_schema_snippet(tmp_path):
    # the seed's `(0.12, -0.05, ...)` filled in, as an embedder's output naming its model
    visual_emb = SemanticEmbedding((0.12, -0.05, 0.3, 0.7), model="m")
    action_emb = SemanticEmbedding((0.31, 0.08, -0.2, 0.1), model="m")
    schema = CanvasSchema(
        layout=CanvasLayout(
            T=8, H=16, W=16, d_model=256,
            regions={
                "visual": RegionSpec(
                    bounds=(0, 8, 0, 12, 0, 12),
                    semantic_type="RGB video 224x224",
                    semantic_embedding=visual_emb,
                ),
                "action": RegionSpec(
                    bounds=(0, 8, 12, 14, 0, 2),
                    loss_weight=2.0,
                    semantic_type="6-DOF end-effector + gripper",
                    semantic_embedding=action_emb,
                ),
            },
        ),
        topology=CanvasTopology(connections=[
            Connection(src="visual", dst="visual"),
            Connection(src="action", dst="visual"),
            Connection(src="action", dst="action"),
        ]),
        metadata={"model": "CogVideoX-2B", "data": "bridge_v2"},
    )
    schema.to_json(tmp_path / "robot_v1.json")
    loaded = CanvasSchema.from_json(tmp_path / "robot_v1.json")
    assert loaded == schema

    other_schema = CanvasSchema(
        layout=CanvasLayout(T=4, H=8, W=8, regions={
            "camera": RegionSpec(bounds=(0, 4, 0, 6, 0, 6),
                                 semantic_embedding=(0.12, -0.05, 0.31, 0.69),
                                 embedding_model="m"),
            "gripper_cmd": RegionSpec(bounds=(0, 4, 6, 7, 0, 2),
                                      semantic_embedding=(0.3, 0.1, -0.2, 0.12),
                                      embedding_model="m"),
            "audio": RegionSpec(bounds=(0, 4, 7, 8, 0, 8),
                                semantic_embedding=(-0.5, 0.5, 0.0, -0.3),
                                embedding_model="m")}),
        topology=CanvasTopology.isolated(["camera", "gripper_cmd", "audio"]))
    pairs = schema.compatible_regions(other_schema, threshold=0.3)
    assert [(a, b) for a, b, _ in pairs] == [("visual", "camera"), ("action", "gripper_cmd")]
    assert all(d <= 0.3 for *_, d in pairs) and pairs[0][2] <= pairs[1][2]
