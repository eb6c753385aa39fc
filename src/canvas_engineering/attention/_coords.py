"""Key bookkeeping shared by the types that care about order or grid position: packing the real
keys to the front, finding the key at a grid coordinate, and how far along the key sequence each
query may read.

Shape glossary: B batch, Nq queries, Nk keys, A coordinate axes (t, h, w, ...).
"""

from __future__ import annotations

import torch

from canvas_engineering.errors import CanvasError


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, *rest), idx (B, M) long -> (B, M, *rest)."""
    rest = x.shape[2:]
    flat = idx.reshape(idx.shape[0], -1, *([1] * len(rest))).expand(-1, -1, *rest)
    return x.gather(1, flat).view(*idx.shape, *rest)


def pack_keys(x_kv: torch.Tensor, kv_mask: torch.Tensor | None,
              kv_coords: torch.Tensor | None = None):
    """Move each row's real keys to the front, in their original order.

    Sequence types (mamba, rwkv, hyena, and the rank-based ones) then see the same sequence as
    without padding, whatever positions were padded. Returns (x_kv, kv_mask, kv_coords, n_real)
    with n_real (B,) long.
    """
    b, nk = x_kv.shape[:2]
    if kv_mask is None:
        return x_kv, None, kv_coords, torch.full((b,), nk, dtype=torch.long, device=x_kv.device)
    order = torch.argsort((~kv_mask).to(torch.int8), dim=1, stable=True)  # (B, Nk)
    x_kv = gather_rows(x_kv, order)
    if kv_coords is not None:
        kv_coords = gather_rows(kv_coords, order)
    return x_kv, kv_mask.gather(1, order), kv_coords, kv_mask.sum(dim=1)


class CoordIndex:
    """Finds the real key at given grid coordinates, in O((Nq + Nk) log Nk).

    Coordinates become mixed-radix ids over the bounding box of the real keys; the ids are
    sorted once and targets are looked up with `searchsorted`.
    """

    def __init__(self, kv_coords: torch.Tensor, kv_mask: torch.Tensor | None) -> None:
        b, nk, _ = kv_coords.shape
        real = torch.ones(b, nk, dtype=torch.bool, device=kv_coords.device) \
            if kv_mask is None else kv_mask
        big = 2 ** 40
        self.lo = kv_coords.masked_fill(~real[..., None], big).amin(dim=(0, 1))  # (A,)
        self.hi = kv_coords.masked_fill(~real[..., None], -big).amax(dim=(0, 1))  # (A,)
        extent = (self.hi - self.lo + 1).clamp(min=1)  # (A,)
        self.strides = torch.ones_like(extent)
        if extent.numel() > 1:
            self.strides[:-1] = extent.flip(0).cumprod(0).flip(0)[1:]
        total = int((extent * self.strides)[0]) if real.any() else 0
        ids = self._ids(kv_coords.clamp(min=self.lo, max=self.hi))  # (B, Nk)
        sentinel = total + torch.arange(nk, device=ids.device)  # distinct, after every real id
        self.sorted_ids, self.perm = torch.where(real, ids, sentinel).sort(dim=1)
        dup = (self.sorted_ids[:, 1:] == self.sorted_ids[:, :-1]) & (self.sorted_ids[:, 1:] < total)
        if dup.any():
            raise CanvasError("kv_coords: two real keys share a coordinate; expected unique "
                              "coordinates per batch row")
        self.n_keys, self.any_real = nk, bool(real.any())

    def _ids(self, coords: torch.Tensor) -> torch.Tensor:
        return ((coords - self.lo) * self.strides).sum(dim=-1)

    def find(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """target (B, *S, A) -> key index (B, *S) and found (B, *S) bool."""
        b, shape = target.shape[0], target.shape[:-1]
        inside = ((target >= self.lo) & (target <= self.hi)).all(dim=-1)  # (B, *S)
        tid = self._ids(target.clamp(min=self.lo, max=self.hi)).reshape(b, -1)  # (B, S)
        pos = torch.searchsorted(self.sorted_ids, tid).clamp(max=self.n_keys - 1)
        found = (self.sorted_ids.gather(1, pos) == tid).view(shape) & inside & self.any_real
        return self.perm.gather(1, pos).view(shape), found


def readout_positions(nq: int, nk: int, n_real: torch.Tensor, kv_mask: torch.Tensor | None,
                      q_coords: torch.Tensor | None, kv_coords: torch.Tensor | None,
                      causal: bool) -> torch.Tensor:
    """How many (packed) keys each query may read: (B, Nq) long, in [0, n_real].

    Not causal: all real keys. Causal with coordinates: the keys whose time (axis 0) is at most
    the query's. Causal without coordinates and Nq == Nk: keys 0..i for query i (aligned).
    Otherwise all real keys.
    """
    b = n_real.shape[0]
    if causal and q_coords is not None and kv_coords is not None:
        tk = kv_coords[..., 0]  # (B, Nk), packed
        if kv_mask is not None:
            tk = tk.masked_fill(~kv_mask, torch.iinfo(tk.dtype).max)
        if (tk[:, 1:] < tk[:, :-1]).any():
            raise CanvasError("kv_coords: time (axis 0) decreases along the key sequence; "
                              "expected t-major canvas order")
        return torch.searchsorted(tk.contiguous(), q_coords[..., 0].contiguous(), right=True)
    if causal and nq == nk:
        aligned = torch.arange(1, nq + 1, device=n_real.device)  # (Nq,)
        return torch.minimum(aligned[None, :], n_real[:, None])
    return n_real[:, None].expand(b, nq)
