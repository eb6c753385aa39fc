"""Lowering: a topology on a layout becomes attention structure, without per-position loops
and without anything quadratic in the number of regions.

Shape glossary: N positions, C cells, A atoms, P connected atom pairs, nb blocks.

1. Each connection lowers to *frame edges*, (src frame, dst frame, fill weight) triples, by the
   library's single time rule (`frame_edges`).
2. Positions group into *cells*: one cell per (region, canvas frame), a spatial box. The
   connections give a sparse list of (query cell, key cell, weight), max over connections.
3. Positions carry an *atom* label: the set of cells they belong to (one cell, or none, unless
   regions overlap). The cell pairs become a sparse list of connected atom pairs (`pairs`), and
   every mask form is read off it through the labels: dense (N, N), boolean, additive, index
   pairs, and a FlexAttention `BlockMask` (`block_sparse.py`). Memory and time are
   O(connections · frames + C + N) plus the size of the form asked for; the (A, A) matrix
   `weight` exists only when asked for.
4. The *execution order* (`order`) is a permutation of positions in which each atom's positions
   are contiguous and connected atoms are neighbours, so 128×128 blocks are mostly full or
   empty. The dispatcher applies it at its boundary; canvas-order masks are the default.

The time rule itself (PRODUCT.md §3.7) is in `frame_edges.py`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import torch

from canvas_engineering.lowering.block_sparse import block_tables
from canvas_engineering.lowering.frame_edges import frame_edges
from canvas_engineering.lowering.sparse import atom_order, csr, expand, pair_lookup, reduce_max
from canvas_engineering.spec.layout import CanvasLayout

if TYPE_CHECKING:  # topology.py calls into lowering, so lowering must not import it
    from canvas_engineering.spec.topology import CanvasTopology

_ORDERS = ("canvas", "execution")


class Lowering:
    """A topology lowered on a layout: per-position atom labels and the connected atom pairs.

    Build with `lower(topology, layout)`; each mask form is a cheap read-off.

    Attributes: label (N,) long, the atom of each position (the last atom, `empty_atom`, has no
    cell); pairs: (q, k, w), (P,) each, every connected atom pair once, sorted by (q, k), with
    its connection weight; num_atoms: A.
    """

    def __init__(self, topology: CanvasTopology, layout: CanvasLayout):
        topology.validate(layout)
        self.topology, self.layout = topology, layout
        names = layout.region_names
        offsets, total = {}, 0
        for n in names:
            offsets[n] = total
            total += len(layout.regions[n].frames)
        self.cell_offset, self.num_cells = offsets, total
        self.label, self.num_atoms, atom_of_cell = self._atoms()
        self.pairs = self._atom_pairs(*self._cell_pairs(), atom_of_cell)

    def _region_cells(self, name: str) -> torch.Tensor:
        """The cell of each position of a region, as a (frames, *spatial extents) block."""
        spec = self.layout.regions[name]
        cells = torch.arange(len(spec.frames)) + self.cell_offset[name]
        return cells.view(-1, *[1] * (spec.ndim - 1)).expand(spec.shape)

    def _atoms(self) -> tuple[torch.Tensor, int, tuple[torch.Tensor, torch.Tensor] | None]:
        """Atom label per position (N,), the number of atoms A, and (cell, atom) incidence pairs
        (None: atom = cell).

        The last atom is always the empty one (no cell), used for padding.
        """
        C, names = self.num_cells, self.layout.region_names
        if not self.layout.allow_overlap:  # atoms = cells + empty
            return self._paint(), C + 1, None
        # Overlap: an atom is a set of cells. Each position lists its cells in a row padded
        # with C (depth = the most regions covering one position): O(N · depth), not O(R · N).
        N = self.layout.num_positions
        pos = torch.cat([self.layout.region_index_tensor(n) for n in names])
        cell = torch.cat([self._region_cells(n).reshape(-1) for n in names])
        order = torch.argsort(pos * (C + 1) + cell)
        pos, cell = pos[order], cell[order]
        depth = torch.bincount(pos, minlength=N)
        slot = torch.arange(len(pos)) - (torch.cumsum(depth, 0) - depth)[pos]
        rows = torch.full((N, max(int(depth.max()), 1)), C, dtype=torch.long)
        rows[pos, slot] = cell
        atoms, label = torch.unique(rows, dim=0, return_inverse=True)  # lexicographic rows
        if not bool((atoms[-1] == C).all()):  # every position covered: add the empty atom
            atoms = torch.cat([atoms, torch.full_like(atoms[:1], C)])
        a, j = torch.nonzero(atoms < C, as_tuple=True)
        return label, len(atoms), (atoms[a, j], a)

    def _paint(self) -> torch.Tensor:
        """Cell of each position (N,), C where no region is, for non-overlapping boxes.

        A difference array instead of one write per region: each box adds ±(its index + 1) at
        its 2^ndim corners, and a cumulative sum along every axis leaves at each position the
        index of the one box holding it. O(N + regions), a few array passes.
        """
        lay, names = self.layout, self.layout.region_names
        ndim = len(lay.shape)
        bounds = torch.tensor([lay.regions[n].bounds for n in names], dtype=torch.long)
        lo, hi = bounds[:, 0::2], bounds[:, 1::2]  # (R, ndim)
        diff = torch.zeros([s + 1 for s in lay.shape], dtype=torch.long)
        value = torch.arange(1, len(names) + 1)
        for corner in range(2 ** ndim):  # 2^ndim, not regions
            upper = [(corner >> a) & 1 for a in range(ndim)]
            at = torch.stack([hi[:, a] if u else lo[:, a] for a, u in enumerate(upper)], 1)
            sign = -1 if sum(upper) % 2 else 1
            diff.index_put_(tuple(at.T), sign * value, accumulate=True)
        for a in range(ndim):
            diff = diff.cumsum(a)
        region = diff[tuple(slice(0, s) for s in lay.shape)].reshape(-1) - 1  # (N,), -1: none
        offset = torch.tensor([self.cell_offset[n] for n in names] + [self.num_cells])
        t0 = torch.cat([lo[:, 0], torch.zeros(1, dtype=torch.long)])
        t = torch.arange(lay.shape[0]).repeat_interleave(lay.num_positions // lay.shape[0])
        return torch.where(region >= 0, offset[region] + t - t0[region], self.num_cells)

    def _cell_pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Connected (query cell, key cell, weight) triples, max over connections. (Pc,) each"""
        q, k, val = [], [], []  # gathered in Python, reduced once: thousands of connections
        for conn in self.topology.connections:
            fe = frame_edges(conn, self.layout)
            src0 = self.cell_offset[conn.src] - self.layout.regions[conn.src].bounds[0]
            dst0 = self.cell_offset[conn.dst] - self.layout.regions[conn.dst].bounds[0]
            q += [src0 + f for f in fe.src_frame]
            k += [dst0 + f for f in fe.dst_frame]
            val += [conn.weight * w for w in fe.weight]
        C1 = self.num_cells + 1
        flat = torch.tensor(q, dtype=torch.long) * C1 + torch.tensor(k, dtype=torch.long)
        flat, w = reduce_max(flat, torch.tensor(val, dtype=torch.float32))
        return flat // C1, flat % C1, w

    def _atom_pairs(self, cq, ck, w, atom_of_cell):
        """Cell pairs -> atom pairs, max over the cells of a query atom and a key atom."""
        if atom_of_cell is None:  # atoms are cells: already unique and sorted
            return cq, ck, w
        cells, atoms = atom_of_cell
        by_cell = csr(cells, self.num_cells)
        e, aq = expand(cq, *by_cell, atoms)
        e2, ak = expand(ck[e], *by_cell, atoms)
        A = self.num_atoms
        flat, wmax = reduce_max(aq[e2] * A + ak, w[e][e2])
        return flat // A, flat % A, wmax

    # -- read-offs ------------------------------------------------------------------------------

    @property
    def empty_atom(self) -> int:
        return self.num_atoms - 1

    @cached_property
    def atom_counts(self) -> torch.Tensor:
        """Positions per atom. (A,)"""
        return torch.bincount(self.label, minlength=self.num_atoms)

    @cached_property
    def weight(self) -> torch.Tensor:
        """(A, A) float32 connection weight between atoms (0 = not connected). Dense, so
        O(A²): for dense masks (already O(N²)) and small topologies; the rest reads `pairs`."""
        q, k, w = self.pairs
        out = torch.zeros(self.num_atoms, self.num_atoms)
        out[q, k] = w
        return out

    def _expand(self, atom_matrix: torch.Tensor) -> torch.Tensor:
        """(A, A) → (N, N) through the labels. Rows of one atom are equal, so build the A
        distinct rows once and copy whole rows: the cost is writing the N×N result."""
        rows = atom_matrix[:, self.label]  # (A, N)
        return torch.index_select(rows, 0, self.label)  # (N, N)

    def dense_mask(self) -> torch.Tensor:
        """(N, N) float32 connection weight of query i → key j (0 = not connected)."""
        return self._expand(self.weight)

    def bool_mask(self) -> torch.Tensor:
        """(N, N) bool: query i may attend to key j."""
        return self._expand(self.weight > 0)

    def additive_mask(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """(N, N) log(weight) where connected and -inf elsewhere; add it to attention logits."""
        return self._expand(self.weight.log().to(dtype or torch.float32))

    def density(self) -> float:
        """Fraction of (query, key) pairs connected, from atom counts (no N×N)."""
        q, k, _ = self.pairs
        c = self.atom_counts.double()
        return float((c[q] * c[k]).sum()) / self.layout.num_positions ** 2

    def index_pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every connected (query, key) pair once, sorted by (query, key). (P,), (P,), (P,)"""
        order = torch.argsort(self.label, stable=True)  # positions grouped by atom
        counts = self.atom_counts
        start = torch.cumsum(counts, 0) - counts
        qa, ka, wa = self.pairs  # connected atom pairs
        sizes = counts[qa] * counts[ka]
        pair = torch.repeat_interleave(torch.arange(len(qa)), sizes)  # (P,) atom pair of each
        e = torch.arange(len(pair)) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes,
                                                              sizes)
        q = order[start[qa][pair] + e // counts[ka][pair]]
        k = order[start[ka][pair] + e % counts[ka][pair]]
        sort = torch.argsort(q * self.layout.num_positions + k)
        return q[sort], k[sort], wa[pair[sort]]

    @cached_property
    def order(self) -> torch.Tensor:
        """The execution order (N,): execution slot i holds canvas position order[i]. Each
        atom's positions are contiguous (in canvas order) and atoms follow `atom_order`."""
        q, k, _ = self.pairs
        rank = atom_order(q, k, self.num_atoms)
        return torch.argsort(rank[self.label], stable=True)

    def lookup(self, default: float | bool = 0.0, *, log: bool = False, device=None):
        """A function (atom q, atom k) -> connection weight (its log with `log`; `default`
        where unconnected) that broadcasts and runs inside FlexAttention's mods."""
        q, k, w = self.pairs
        values = w.log() if log else w
        if isinstance(default, bool):
            values = torch.ones(len(q), dtype=torch.bool)
        return pair_lookup(q, k, values, self.num_atoms, default, device)

    def block_mask(self, block_size: int = 128, device: torch.device | str | None = None,
                   order: str = "canvas"):
        """A FlexAttention `BlockMask` (B = H = 1, broadcast over batch and heads).

        Block (qb, kb) is full when every query-key pair in it is connected, partial when some
        are (its `mask_mod` looks the pair up through the atom labels), absent otherwise.
        order: "canvas" (positions as the canvas indexes them) or "execution" (positions
        permuted by `order`, as the dispatcher runs them: far fewer partial blocks). Memory is
        O(N + P + the index tables), never O(N²) or O(A²). Index tables are (nb, nb) in the
        canvas order up to 4,096 blocks (what FlexAttention's compiled CPU kernel expects) and
        otherwise as wide as their widest row (`block_sparse.FULL_WIDTH_BLOCKS`).
        """
        from torch.nn.attention.flex_attention import BlockMask

        if order not in _ORDERS:
            raise ValueError(f"order: got {order!r}, expected one of {list(_ORDERS)}")
        N = self.layout.num_positions
        nb = -(-N // block_size)
        pad = torch.full((nb * block_size - N,), self.empty_atom, dtype=torch.long)
        label = self.label if order == "canvas" else self.label[self.order]
        label = torch.cat([label, pad])
        q, k, _ = self.pairs
        kv, qt = block_tables(label, q, k, self.num_atoms, block_size,
                              full_width=order == "canvas")
        t = [x[None, None].to(device) for x in (kv.num, kv.idx, kv.full_num, kv.full_idx,
                                                 qt.num, qt.idx, qt.full_num, qt.full_idx)]
        allowed = self.lookup(False, device=device)
        label = label.to(device)

        def mask_mod(b, h, q_idx, kv_idx):
            return allowed(label[q_idx], label[kv_idx])

        return BlockMask((N, N), *t, BLOCK_SIZE=(block_size, block_size), mask_mod=mask_mod)


def lower(topology: CanvasTopology, layout: CanvasLayout) -> Lowering:
    """Validate `topology` against `layout` and lower it (see the module docstring)."""
    return Lowering(topology, layout)
