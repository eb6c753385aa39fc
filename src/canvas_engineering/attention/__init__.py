"""The attention function library: one `nn.Module` per attention type of seed 001, and the
registry that names them.

Every type follows one calling convention (see `_common.py`)::

    attn = create_attention("perceiver", d_model=64, n_heads=4)
    out = attn(x_q, x_kv, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0)  # (B, Nq, 64)
"""

from ._common import AttentionModule
from .backbone import CogVideoXAttention
from .compression import CopyAttention, PerceiverAttention, PoolingAttention
from .dot_product import CosineAttention, CrossAttention, LinearAttention, SigmoidAttention
from .gated import GatedAttention
from .hyena import HyenaAttention
from .mamba import MambaAttention, selective_scan
from .meta import MixtureAttention, NoneAttention, RandomFixedAttention
from .registry import attention_names, create_attention, get_attention_class, register_attention
from .rwkv import RWKVAttention
from .sparse import LocalAttention, SparseAttention

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
