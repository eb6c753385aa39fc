"""Find and load a pretrained CogVideoX transformer without the network, and build tiny ones.

`pretrained_model_id` is either a local directory (a `save_pretrained` folder, or a pipeline
folder with a `transformer/` subfolder) or a hub id such as "THUDM/CogVideoX-2b" that is
resolved in the local Hugging Face cache only (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or
`cache_dir`). Nothing here downloads: a model that is not on disk is a `FileNotFoundError`
naming every place looked. diffusers is imported inside the functions (the `[video]` extra),
so importing this module needs only torch.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from canvas_engineering.errors import bad

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
WEIGHTS_PREFIX = "diffusion_pytorch_model"  # .safetensors, .safetensors.index.json, .bin


def diffusers_available() -> bool:
    """True when diffusers can be imported (a blocked or missing module counts as absent)."""
    try:
        import diffusers  # noqa: F401
    except ImportError:
        return False
    return True


def usable_backbone(name: str) -> str:
    """`name`, or "scratch" with a warning when `name` needs diffusers and it is missing."""
    if name == "cogvideox" and not diffusers_available():
        warnings.warn("backbone 'cogvideox' needs diffusers, which is not installed; training "
                      "the 'scratch' backbone instead (pip install 'canvas-engineering[video]' "
                      "for the pretrained one)", RuntimeWarning, stacklevel=2)
        return "scratch"
    return name


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        p.name.startswith(WEIGHTS_PREFIX) for p in folder.iterdir())


def _hub_cache(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants  # honours HF_HOME / HF_HUB_CACHE

    return Path(constants.HF_HUB_CACHE)


def _from_cache(model_id: str, cache_dir) -> tuple[Path | None, list[str]]:
    """The cached snapshot folder holding the transformer of hub repo `model_id`, and where we
    looked. Only the cache's own `refs/main` snapshot is used, as `from_pretrained` offline."""
    from huggingface_hub import try_to_load_from_cache

    looked = []
    for sub in ("transformer/", ""):
        found = try_to_load_from_cache(model_id, f"{sub}config.json", cache_dir=cache_dir)
        repo = _hub_cache(cache_dir) / f"models--{model_id.replace('/', '--')}"
        looked.append(f"{repo}/snapshots/<refs/main>/{sub}config.json (+ weights)")
        if isinstance(found, str) and _has_model(Path(found).parent):
            return Path(found).parent, looked
    return None, looked


def resolve_pretrained(model_id: str, cache_dir: str | None = None) -> Path:
    """The local folder holding the transformer's config.json and weights for `model_id`.

    Raises FileNotFoundError naming every place looked when none holds both.
    """
    if not isinstance(model_id, str) or not model_id:
        raise bad("pretrained_model_id", model_id, "a local directory or a hub id such as "
                  "'THUDM/CogVideoX-2b' in the local cache")
    path = Path(model_id).expanduser()
    looked = []
    for folder in (path, path / "transformer"):
        looked.append(f"{folder.resolve()}/config.json (+ {WEIGHTS_PREFIX}*)")
        if folder.is_dir() and _has_model(folder):
            return folder
    if not path.exists() and model_id.count("/") == 1:  # could be a hub id
        try:
            found, more = _from_cache(model_id, cache_dir)
        except ImportError:
            found, more = None, ["the hub cache (huggingface_hub is not installed)"]
        looked += more
        if found is not None:
            return found
    raise FileNotFoundError(
        f"pretrained_model_id: no CogVideoX transformer weights for {model_id!r}; looked in "
        + "; ".join(looked) + ". Nothing is downloaded at run time: save the model with "
        "save_pretrained to a directory, or fetch it into the Hugging Face cache beforehand")


def load_transformer(model_id: str, dtype: str = "bfloat16", cache_dir: str | None = None,
                     device: str | torch.device = "cpu"):
    """The pretrained `CogVideoXTransformer3DModel` of `model_id`, frozen, in `dtype`, in eval
    mode, on `device`. Loads from a local folder only (`resolve_pretrained`)."""
    if dtype not in DTYPES:
        raise bad("dtype", dtype, f"one of {list(DTYPES)}")
    folder = resolve_pretrained(model_id, cache_dir)
    try:
        from diffusers import CogVideoXTransformer3DModel
    except ImportError as e:
        raise ImportError("backbone 'cogvideox' needs diffusers: pip install "
                          "'canvas-engineering[video]'") from e
    # from_pretrained on a local folder never touches the network (even without HF_HUB_OFFLINE).
    model = CogVideoXTransformer3DModel.from_pretrained(str(folder), torch_dtype=DTYPES[dtype])
    model.requires_grad_(False)
    return model.to(device).eval()


def save_tiny_cogvideox(path: str | os.PathLike, *, heads: int = 2, head_dim: int = 16,
                        layers: int = 2, seed: int = 0) -> Path:
    """Build a CogVideoX transformer with random weights from a small config and
    `save_pretrained` it to `path` (for tests, examples and the built-in DAG on a CPU).
    Width D = heads · head_dim; the time embedding is 4·head_dim wide."""
    from diffusers import CogVideoXTransformer3DModel

    torch.manual_seed(seed)
    model = CogVideoXTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=4, out_channels=4,
        time_embed_dim=4 * head_dim, text_embed_dim=16, num_layers=layers, sample_width=8,
        sample_height=8, sample_frames=9, patch_size=2, temporal_compression_ratio=4,
        max_text_seq_length=4)
    model.save_pretrained(str(path))
    return Path(path)
