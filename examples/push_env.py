"""Draw one episode of the built-in push task as a PNG filmstrip.

    python examples/push_env.py [seed] [out.png]

Each panel is one recorded frame (red agent, blue object, green goal) titled with the action taken
after it and the frame's reward. Needs matplotlib (the `[train]` extra).
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from canvas_engineering.data import PushConfig, make_episode

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
out = sys.argv[2] if len(sys.argv) > 2 else "push_episode.png"
config = PushConfig(n_frames=8, image_size=48)
episode = make_episode(seed, config)

fig, axes = plt.subplots(1, config.n_frames, figsize=(1.6 * config.n_frames, 2.0))
for t, ax in enumerate(axes):
    ax.imshow((episode["video"][t].transpose(1, 2, 0) + 1) / 2)  # (3, S, S) in [-1, 1] -> RGB
    ax.set_title(f"a=({episode['action'][t][0]:+.1f},{episode['action'][t][1]:+.1f})\n"
                 f"r={episode['reward'][t][0]:.2f}", fontsize=7)
    ax.axis("off")
fig.tight_layout()
fig.savefig(out, dpi=100)
print(f"wrote {out}")
