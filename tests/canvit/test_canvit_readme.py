"""The README's CanViT snippet runs as written and its shape comments hold."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_canvit_snippet_runs_and_ends_with_its_shapes():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [b for b in blocks if "canvas_engineering.canvit" in b]
    ns: dict = {}
    exec(block, ns)
    out, model = ns["out"], ns["model"]
    assert tuple(out.state.canvas.shape) == (1, 4 + 16 * 16, 64)
    assert tuple(model.canvas_patch_grid(out.state.canvas).shape) == (1, 16, 16, 64)
    assert tuple(out.state.recurrent_cls.shape) == (1, 1, 128)
    assert tuple(out.glimpse_patches.shape) == (1, 16, 128)
