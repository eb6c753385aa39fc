"""Write a tiny LeRobot v2.1 dataset directory (parquet + mp4) from push-task episodes, laid out
as LeRobot writes it, and return what was written so tests can compare with it."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from canvas_engineering.data import PushConfig, PushDataset

CAMERA = "observation.images.top"
ARRAYS = {"video": CAMERA, "action": "action", "reward": "next.reward"}
FPS = 10


def write_video(file, frames: np.ndarray, codec: str = "libx264rgb") -> None:
    """(L, H, W, 3) uint8 frames as an mp4 at FPS; libx264rgb at qp 0 is lossless."""
    import av

    file.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(file), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
        stream.options = {"qp": "0"} if codec == "libx264rgb" else {}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_lerobot(root, count: int, length: int = 7, size: int = 24, chunks_size: int = 1000,
                  codec: str = "libx264rgb") -> list[dict]:
    """`count` episodes of `length` frames under `root`. Returns per episode the arrays written:
    "video" (L, 3, S, S) uint8, "action" (L, 2), "reward" (L, 1) float32."""
    episodes = PushDataset(count, seed=5, config=PushConfig(n_frames=length, image_size=size))
    truth, index = [], 0
    for i in range(count):
        item = episodes[i]
        video = ((item["video"].numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        action, reward = item["action"].numpy(), item["reward"].numpy()
        chunk = i // chunks_size
        table = pa.table({
            "action": pa.array(list(action), type=pa.list_(pa.float32(), 2)),
            "observation.state": pa.array(list(item["proprio"].numpy()),
                                          type=pa.list_(pa.float32(), 4)),
            "next.reward": pa.array(reward[:, 0], type=pa.float32()),
            "timestamp": pa.array(np.arange(length) / FPS, type=pa.float32()),
            "frame_index": pa.array(np.arange(length), type=pa.int64()),
            "episode_index": pa.array(np.full(length, i), type=pa.int64()),
            "index": pa.array(np.arange(index, index + length), type=pa.int64()),
            "task_index": pa.array(np.zeros(length), type=pa.int64()),
        })
        data = root / f"data/chunk-{chunk:03d}/episode_{i:06d}.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data)
        write_video(root / f"videos/chunk-{chunk:03d}/{CAMERA}/episode_{i:06d}.mp4",
                    video.transpose(0, 2, 3, 1), codec)
        truth.append({"video": video, "action": action, "reward": reward})
        index += length
    vector = {"dtype": "float32", "names": None}
    info = {
        "codebase_version": "v2.1", "robot_type": "push", "total_episodes": count,
        "total_frames": index, "total_tasks": 1, "total_videos": count,
        "total_chunks": (count - 1) // chunks_size + 1, "chunks_size": chunks_size, "fps": FPS,
        "splits": {"train": f"0:{count}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {
            CAMERA: {"dtype": "video", "shape": [size, size, 3],
                     "names": ["height", "width", "channels"],
                     "info": {"video.fps": FPS, "video.codec": codec}},
            "action": {**vector, "shape": [2]},
            "observation.state": {**vector, "shape": [4]},
            "next.reward": {**vector, "shape": [1]},
            "timestamp": {**vector, "shape": [1]},
            **{k: {"dtype": "int64", "shape": [1], "names": None}
               for k in ("frame_index", "episode_index", "index", "task_index")},
        },
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": i, "tasks": ["push"], "length": length}) + "\n"
        for i in range(count)))
    (root / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "push"}) + "\n")
    return truth
