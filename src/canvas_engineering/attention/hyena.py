"""Convolution family: a Hyena operator (Poli et al., 2023), order 2, with the last gate taken
from the queries.

Shape glossary: B batch, Nq queries, L = Nk keys, D d_model, F positional features.

Over the key sequence:  u = h2 * (x1 ⊙ (h1 * v)),  with v, x1 projections of the keys (after a
short causal depthwise conv) and h1, h2 implicit long filters: a small MLP of sinusoidal
features of the lag, times a learned exponential decay window, one filter per channel. `*` is
a causal convolution done by FFT in O(L log L). Query i then reads u at the last key it may see
(`readout_positions`) through its own gate: out_i = W_o(W_g x_q,i ⊙ u[p_i - 1]).
The convolutions are causal exactly in math; in floating point the FFT spreads rounding error
(~1e-9 relative) from later keys, so "does not read the future" holds to round-off only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from canvas_engineering.attention._common import AttentionModule, check_positive_int
from canvas_engineering.attention._coords import gather_rows, pack_keys, readout_positions
from canvas_engineering.attention.registry import register_attention


def fft_causal_conv(x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    """y_t = Σ_{s ≤ t} filt_{t-s} ⊙ x_s by FFT. x (B, L, D), filt (L, D) -> (B, L, D)."""
    length = x.shape[1]
    n = 1 << (2 * length - 1).bit_length()  # zero padding to >= 2L: no wrap-around
    xf = torch.fft.rfft(x.float(), n=n, dim=1)  # (B, n/2+1, D)
    ff = torch.fft.rfft(filt.float(), n=n, dim=0)  # (n/2+1, D)
    return torch.fft.irfft(xf * ff, n=n, dim=1)[:, :length].to(x.dtype)


class ImplicitFilter(nn.Module):
    """A long filter of any length: MLP(sin/cos features of the lag) ⊙ exp(-rate · lag)."""

    def __init__(self, d_model: int, n_features: int = 8, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.logspace(-3, 0, n_features // 2) * math.pi,
                             persistent=False)  # (F/2,) from very slow to fast
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.SiLU(),
                                 nn.Linear(hidden, d_model))
        self.log_rate = nn.Parameter(torch.linspace(math.log(1e-3), math.log(0.3), d_model))

    def forward(self, length: int) -> torch.Tensor:
        """Returns the filter (L, D); lags are absolute, so a prefix does not depend on L."""
        lag = torch.arange(length, device=self.freqs.device, dtype=self.freqs.dtype)
        ang = lag[:, None] * self.freqs  # (L, F/2)
        feats = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)  # (L, F)
        return self.mlp(feats) * torch.exp(-lag[:, None] * torch.exp(self.log_rate))  # (L, D)


@register_attention("hyena")
class HyenaAttention(AttentionModule):
    """FFT long convolution with data-dependent gating, O(Nk log Nk + Nq).

    causal=True (default): query reads follow `readout_positions` (time-causal with
    coordinates, aligned when Nq == Nk); causal=False: every query reads the last real key's
    output. No logits: `beta` is ignored; `n_heads` is only validated.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, causal: bool = True,
                 short_kernel: int = 3, n_features: int = 8, filter_hidden: int = 32,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads)
        self.causal = bool(causal)
        k = check_positive_int("short_kernel", short_kernel)
        nf = check_positive_int("n_features", n_features)
        if nf % 2:
            raise ValueError(f"n_features: got {nf}, expected an even number (sin and cos)")
        self.in_proj = nn.Linear(d_model, 2 * d_model, bias=bias)  # v, x1
        self.short = nn.Conv1d(2 * d_model, 2 * d_model, k, groups=2 * d_model, padding=k - 1)
        self.filters = nn.ModuleList(
            [ImplicitFilter(d_model, nf, check_positive_int("filter_hidden", filter_hidden))
             for _ in range(2)])
        self.skip = nn.Parameter(torch.ones(2, d_model))  # Hyena's per-channel bias term
        self.gate_q = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """The order-2 Hyena recurrence over (packed) keys: (B, L, D) -> (B, L, D)."""
        length = x.shape[1]
        z = self.short(self.in_proj(x).transpose(1, 2))[..., :length]  # causal: (B, 2D, L)
        v, x1 = z.transpose(1, 2).chunk(2, dim=-1)  # (B, L, D) each
        h1, h2 = (f(length) for f in self.filters)  # (L, D) each
        u = x1 * (fft_causal_conv(v, h1) + self.skip[0] * v)
        return fft_causal_conv(u, h2) + self.skip[1] * u

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        x, mask, kc, n_real = pack_keys(x_kv, kv_mask, kv_coords)
        if mask is not None:  # padding is now trailing; zero it so it is inert
            x = x * mask[..., None].to(x.dtype)
        u = self.context(x)  # (B, L, D); u_t depends on keys <= t only
        p = readout_positions(x_q.shape[1], x.shape[1], n_real, mask, q_coords, kc, self.causal)
        read = gather_rows(u, (p - 1).clamp(min=0)) * (p > 0)[..., None].to(u.dtype)  # (B,Nq,D)
        return self.out_proj(self.gate_q(x_q) * read)
