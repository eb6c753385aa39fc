"""The names of the attention function types a connection may declare (seed 001).

This is the declaration-level registry: a name and a one-line description per type, so that a
`Connection(fn=...)` or `RegionSpec(default_attn=...)` can be validated without importing any
`torch.nn` code. The executable modules live in `canvas_engineering.attention`; registering a
custom module there (`register_attention`) also adds its name here.
"""

from __future__ import annotations

from canvas_engineering.errors import AttentionTypeError

DEFAULT_ATTENTION = "cross_attention"

# name -> (family, complexity, description)
ATTENTION_TYPES: dict[str, tuple[str, str, str]] = {
    "cross_attention": ("dot-product", "O(NM)", "Scaled dot-product QKV attention with softmax; the default."),
    "linear_attention": ("dot-product", "O(N+M)", "Kernelised attention with elu+1 features, no softmax."),
    "cosine_attention": ("dot-product", "O(NM)", "Softmax over cosine similarities instead of scaled dot products."),
    "sigmoid_attention": ("dot-product", "O(NM)", "Each key gated independently by a sigmoid; non-exclusive attention."),
    "gated": ("gating", "O(NM)", "Flamingo-style cross-attention behind a learned gate that starts closed."),
    "perceiver": ("compression", "O(NK)", "Cross-attention through a learned latent bottleneck of K << M slots."),
    "pooling": ("compression", "O(N+M)", "Mean-pool the keys into one vector and broadcast it to every query."),
    "copy": ("transfer", "O(N)", "Direct transfer of dst latents to src positions; no learned parameters."),
    "mamba": ("state-space", "O(N)", "Selective state-space scan (S6) over dst with a query-based readout."),
    "rwkv": ("state-space", "O(N)", "Linear attention with learned exponential decay over positions."),
    "hyena": ("convolution", "O(N log N)", "FFT long convolution with data-dependent gating."),
    "sparse_attention": ("sparse", "O(NK)", "Top-k attention: only the k largest logits survive the softmax."),
    "local_attention": ("sparse", "O(NW)", "Attention within a window over the canvas grid coordinates."),
    "none": ("meta", "O(0)", "The edge is declared but contributes nothing (ablations)."),
    "random_fixed": ("meta", "O(NK)", "A random sparse pattern frozen at initialisation (baseline)."),
    "mixture": ("meta", "O(NK)", "Mixture-of-experts routing of each query to a subset of keys."),
    "cogvideox": ("backbone", "O(NM)", "CogVideoX-native attention; standard attention inside the dispatcher."),
    "self_attention": ("dot-product", "O(NM)", "Alias of cross_attention, for connections from a region to itself."),
}

# The 17 mechanisms seed 001 lists; with the self_attention alias that makes the 18 names the
# seed's API table counts.
BUILTIN_TYPES: tuple[str, ...] = tuple(ATTENTION_TYPES)


def check_attention_type(name: object, field: str) -> str:
    """Return `name` if it is a registered attention type, else raise naming `field`."""
    if not isinstance(name, str) or name not in ATTENTION_TYPES:
        raise AttentionTypeError(
            f"{field}: got {name!r}, expected one of {sorted(ATTENTION_TYPES)}"
        )
    return name


def declare_attention_type(name: str, description: str = "", family: str = "custom",
                           complexity: str = "?") -> None:
    """Add a name to the declaration registry (used by `register_attention`)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise AttentionTypeError(f"name: got {name!r}, expected an identifier-like string")
    ATTENTION_TYPES[name] = (family, complexity, description)
