"""Tiny CogVideoX / Wan / Mochi transformers built from configs (no downloads), shared by the
graft, checkpoint and sharpening tests. Importing this module skips the importing test module
when diffusers is not installed."""

from __future__ import annotations

import copy

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

MODELS = ("cogvideox", "wan", "mochi")


def build(name: str, dtype=torch.float32, seed: int = 0):
    """A 2-layer, 2-head, D=16 transformer of family `name`, in `dtype`."""
    torch.manual_seed(seed)
    if name == "cogvideox":
        model = diffusers.CogVideoXTransformer3DModel(
            num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
            time_embed_dim=8, text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8,
            sample_frames=9, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=4)
    elif name == "wan":
        model = diffusers.WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
            out_channels=4, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2,
            cross_attn_norm=True, rope_max_seq_len=32)
    elif name == "mochi":
        model = diffusers.MochiTransformer3DModel(
            patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2,
            pooled_projection_dim=12, in_channels=4, text_embed_dim=16, time_embed_dim=4,
            max_sequence_length=4)
    else:
        raise KeyError(name)
    return model.to(dtype).eval()


def inputs(name: str, dtype=torch.float32, seed: int = 1) -> dict:
    """Keyword inputs of one forward pass: batch 2, 2–3 latent frames of 8 × 8, 4 text tokens."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(2, 4, 16, generator=g).to(dtype)
    timestep = torch.tensor([10, 500])
    if name == "cogvideox":  # (B, F, C, H, W)
        x = torch.randn(2, 3, 4, 8, 8, generator=g).to(dtype)
        return {"hidden_states": x, "encoder_hidden_states": text, "timestep": timestep}
    x = torch.randn(2, 4, 2, 8, 8, generator=g).to(dtype)  # (B, C, F, H, W)
    kw = {"hidden_states": x, "encoder_hidden_states": text, "timestep": timestep}
    if name == "mochi":
        kw["encoder_attention_mask"] = torch.ones(2, 4, dtype=torch.bool)
    return kw


def run(model, name: str, dtype=torch.float32) -> torch.Tensor:
    """The model's output latent on the fixed inputs."""
    return model(**inputs(name, dtype), return_dict=False)[0]


def pair(name: str, dtype=torch.float32):
    """(original, copy to graft): two identical tiny models."""
    original = build(name, dtype)
    return original, copy.deepcopy(original)
