"""The attention function library: one `nn.Module` per attention type of seed 001, and the
registry that names them.

Every type follows one calling convention (see `_common.py`)::

    attn = create_attention("perceiver", d_model=64, n_heads=4)
    out = attn(x_q, x_kv, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0)  # (B, Nq, 64)
"""

from canvas_engineering.attention._common import AttentionModule
from canvas_engineering.attention.cogvideox import CogVideoXAttention
from canvas_engineering.attention.compression import (
    CopyAttention,
    PerceiverAttention,
    PoolingAttention,
)
from canvas_engineering.attention.dot_product import (
    CosineAttention,
    CrossAttention,
    LinearAttention,
    SigmoidAttention,
)
from canvas_engineering.attention.gated import GatedAttention
from canvas_engineering.attention.hyena import HyenaAttention
from canvas_engineering.attention.mamba import MambaAttention, selective_scan
from canvas_engineering.attention.meta import MixtureAttention, NoneAttention, RandomFixedAttention
from canvas_engineering.attention.registry import (
    attention_names,
    create_attention,
    get_attention_class,
    register_attention,
)
from canvas_engineering.attention.rwkv import RWKVAttention
from canvas_engineering.attention.sparse import LocalAttention, SparseAttention

__all__ = [
    "AttentionModule",
    "CogVideoXAttention",
    "CopyAttention",
    "CosineAttention",
    "CrossAttention",
    "GatedAttention",
    "HyenaAttention",
    "LinearAttention",
    "LocalAttention",
    "MambaAttention",
    "MixtureAttention",
    "NoneAttention",
    "PerceiverAttention",
    "PoolingAttention",
    "RWKVAttention",
    "RandomFixedAttention",
    "SigmoidAttention",
    "SparseAttention",
    "attention_names",
    "create_attention",
    "get_attention_class",
    "register_attention",
    "selective_scan",
]
