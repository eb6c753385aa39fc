"""Backbone-native family: cogvideox.

Shape glossary: B batch, Nq queries, Nk keys, D d_model.
"""

from __future__ import annotations

from canvas_engineering.attention._common import QKVAttention
from canvas_engineering.attention.registry import register_attention


@register_attention("cogvideox")
class CogVideoXAttention(QKVAttention):
    """CogVideoX-native attention; inside the dispatcher, standard softmax attention, O(Nq·Nk).

    Declaring `cogvideox` on a region says it is trained inside a CogVideoX transformer. When
    such a backbone is grafted (looped blocks), the backbone's own 3D-RoPE multi-head attention
    runs over every position and supersedes this module; a dispatcher executing the topology
    itself runs this class, which is `cross_attention` with its own parameters.
    """

    softmax_fusion = "dot"
