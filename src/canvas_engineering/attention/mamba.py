"""State-space family, part 1: a selective state-space model (Mamba's S6) over the key sequence,
read out by the queries.

Shape glossary: B batch, Nq queries, L = Nk keys, D d_model, E = expand·D inner width,
S state size per channel.

Uses the `mamba-ssm` selective-scan and `causal-conv1d` CUDA kernels when they import and the
input is on CUDA; otherwise the chunked PyTorch scan in `_scan.py`. Both compute the same
recurrence (Gu & Dao, 2023, Algorithm 2):
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t x_t,   y_t = C_t · h_t + D ⊙ x_t.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.attention._common import AttentionModule, QKVAttention, check_positive_int
from canvas_engineering.attention._coords import pack_keys
from canvas_engineering.attention._scan import linear_scan
from canvas_engineering.attention.registry import register_attention
from canvas_engineering.errors import bad

try:  # optional CUDA kernels; any import failure means "not available"
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_scan
except Exception:  # noqa: BLE001
    _cuda_scan = None
try:
    from causal_conv1d import causal_conv1d_fn as _cuda_conv
except Exception:  # noqa: BLE001
    _cuda_conv = None


def selective_scan(u, delta, A, Bm, Cm, D, *, chunk: int = 32, backend: str = "auto"):
    """The S6 recurrence. u, delta: (B, L, E); A: (E, S); Bm, Cm: (B, L, S); D: (E,).

    Returns y (B, L, E) and the last state (B, E, S). backend: "auto" (CUDA kernel when
    available), "torch" or "cuda".
    """
    if backend == "cuda" or (backend == "auto" and _cuda_scan is not None and u.is_cuda):
        t = lambda x: x.transpose(1, 2).contiguous()  # (B, L, C) -> (B, C, L)
        y, last = _cuda_scan(t(u), t(delta), A.contiguous(), t(Bm), t(Cm), D.float(),
                             delta_softplus=False, return_last_state=True)
        return y.transpose(1, 2), last
    decay = torch.exp(delta[..., None] * A)  # (B, L, E, S), in (0, 1]
    drive = (delta * u)[..., None] * Bm[:, :, None, :]  # (B, L, E, S)
    h = linear_scan(decay, drive, chunk)  # (B, L, E, S)
    y = torch.einsum("bles,bls->ble", h, Cm) + u * D
    return y, h[:, -1]


def selective_last_state(u, delta, A, Bm):
    """The S6 state after the last step, without a scan, O(L·E·S).

    h_L = Σ_t exp(A · Σ_{r>t} Δ_r) ⊙ Δ_t B_t u_t: every exponent is <= 0, so it is stable.
    u, delta: (B, L, E); A: (E, S); Bm: (B, L, S). Returns (B, E, S).
    """
    rest = delta.flip(1).cumsum(1).flip(1)  # (B, L, E): Σ_{r >= t} Δ_r
    after = F.pad(rest[:, 1:], (0, 0, 0, 1))  # Σ_{r > t} Δ_r, 0 for the last step
    decay = torch.exp(after[..., None] * A)  # (B, L, E, S) from step t to the end
    return torch.einsum("bles,bls->bes", decay * (delta * u)[..., None], Bm)


def causal_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *,
                backend: str = "auto") -> torch.Tensor:
    """Depthwise causal conv + SiLU. x (B, L, E), weight (E, k), bias (E,) -> (B, L, E)."""
    if backend == "cuda" or (backend == "auto" and _cuda_conv is not None and x.is_cuda):
        return _cuda_conv(x.transpose(1, 2).contiguous(), weight, bias,
                          activation="silu").transpose(1, 2)
    k = weight.shape[1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :], bias, padding=k - 1, groups=x.shape[-1])
    return F.silu(y[..., : x.shape[1]]).transpose(1, 2)  # keep the causal part


@register_attention("mamba")
class MambaAttention(AttentionModule):
    """Selective SSM (S6) over the keys with a query-based readout; the scan is O(Nk).

    The keys run through Mamba's block (in-projection, causal depthwise conv, input-dependent
    Δ, B, C, selective scan, SiLU gate, out-projection), giving an SSM context sequence.

    readout="attention" (default, seed 001): each query attends to the context sequence by
    scaled dot product (logits times `beta`), so reading is O(Nq·Nk).
    readout="state": each query reads the final compressed state through its own C
    (C_q = W x_q): out_i = W_o((C_q,i · h_last) ⊙ SiLU(W_g x_q,i)), O(Nq + Nk) overall; the
    final state comes from the closed form `selective_last_state` (same recurrence, no scan).
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, d_state: int = 16, expand: int = 2,
                 d_conv: int = 4, dt_rank: int | None = None, readout: str = "attention",
                 chunk: int = 32, backend: str = "auto") -> None:
        super().__init__(d_model, n_heads)
        self.d_state = check_positive_int("d_state", d_state)
        e = d_model * check_positive_int("expand", expand)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None \
            else check_positive_int("dt_rank", dt_rank)
        self.chunk = check_positive_int("chunk", chunk)
        if readout not in ("attention", "state"):
            raise bad("readout", readout, "'attention' or 'state'")
        if backend not in ("auto", "torch", "cuda"):
            raise bad("backend", backend, "'auto', 'torch' or 'cuda'")
        if backend == "cuda" and (_cuda_scan is None or _cuda_conv is None):
            raise bad("backend", backend, "'auto' or 'torch': mamba-ssm / causal-conv1d "
                      "CUDA kernels are not importable here")
        self.readout, self.backend = readout, backend
        # 1. block projections (the "state" readout uses no output sequence: no C, D or z gate)
        seq = readout == "attention"
        self.in_proj = nn.Linear(d_model, (2 if seq else 1) * e)
        self.conv_weight = nn.Parameter(torch.randn(e, check_positive_int("d_conv", d_conv))
                                        / math.sqrt(d_conv))
        self.conv_bias = nn.Parameter(torch.zeros(e))
        self.x_proj = nn.Linear(e, self.dt_rank + (2 if seq else 1) * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, e)
        self.out_proj = nn.Linear(e, d_model)
        # 2. state matrix A = -exp(A_log) (S4D-real init) and skip D
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1.0)).repeat(e, 1))
        self.D = nn.Parameter(torch.ones(e)) if seq else None
        # 3. readout
        if readout == "attention":
            self.read = QKVAttention(d_model, n_heads)
        else:
            self.c_q = nn.Linear(d_model, d_state)
            self.gate_q = nn.Linear(d_model, e)
        self.init_weights()

    def init_weights(self) -> None:
        """Δ bias so that softplus(bias) is log-uniform in [1e-3, 1e-1], as in Mamba."""
        dt = torch.exp(torch.rand(self.dt_proj.out_features)
                       * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def context(self, x_kv: torch.Tensor, kv_mask: torch.Tensor | None):
        """Run the SSM over packed keys.

        Returns (context (B, L, D) or None for the "state" readout, last state (B, E, S)).
        """
        seq = self.readout == "attention"
        xz = self.in_proj(x_kv)
        x, z = xz.chunk(2, dim=-1) if seq else (xz, None)  # (B, L, E) each
        if kv_mask is not None:
            x = x * kv_mask[..., None].to(x.dtype)  # trailing padding enters as zeros
        x = causal_conv(x, self.conv_weight, self.conv_bias, backend=self.backend)
        parts = self.x_proj(x).split([self.dt_rank] + [self.d_state] * (2 if seq else 1), dim=-1)
        delta = F.softplus(self.dt_proj(parts[0]))  # (B, L, E), input-dependent step
        if kv_mask is not None:
            delta = delta * kv_mask[..., None].to(delta.dtype)  # Δ = 0: state passes unchanged
        A = -torch.exp(self.A_log)  # (E, S)
        if not seq:  # only the final state is read: closed form, no scan needed
            return None, selective_last_state(x, delta, A, parts[1])
        y, last = selective_scan(x, delta, A, parts[1], parts[2], self.D, chunk=self.chunk,
                                 backend=self.backend)
        return self.out_proj(y * F.silu(z)), last

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        x_kv, kv_mask, _, _ = pack_keys(x_kv, kv_mask)
        ctx, last = self.context(x_kv, kv_mask)  # (B, L, D), (B, E, S)
        if self.readout == "attention":
            return self.read(x_q, ctx, kv_mask=kv_mask, beta=beta)
        r = torch.einsum("bqs,bes->bqe", self.c_q(x_q), last.to(x_q.dtype))  # (B, Nq, E)
        return self.out_proj(r * F.silu(self.gate_q(x_q)))
