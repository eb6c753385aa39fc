"""Lowering: a topology on a layout becomes attention structure, without per-position loops.

Shape glossary: N positions, C cells, A atoms, P connected (query, key) pairs, nb blocks.

1. Each connection lowers to *frame edges*, (src frame, dst frame, fill weight) triples, by the
   library's single time rule (`frame_edges`).
2. Positions group into *cells*: one cell per (region, canvas frame), a spatial box. Connection
   weights between cells form a small (C, C) matrix (max over connections).
3. Positions carry an *atom* label: the set of cells they belong to (one cell, or none, unless
   regions overlap). Every mask form is read off the (A, A) atom matrix through the labels:
   dense (N, N), boolean, additive, index pairs, and a FlexAttention `BlockMask` whose block
   structure comes from per-block atom counts, so N×N is never materialised.

The time rule itself (PRODUCT.md §3.7) is in `frame_edges.py`.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from canvas_engineering.lowering.frame_edges import frame_edges
from canvas_engineering.spec.layout import CanvasLayout

if TYPE_CHECKING:  # topology.py calls into lowering, so lowering must not import it
    from canvas_engineering.spec.topology import CanvasTopology


class Lowering:
    """A topology lowered on a layout: per-position atom labels and the atom weight matrix.

    Build with `lower(topology, layout)`; each mask form is a cheap read-off.
    """

    def __init__(self, topology: CanvasTopology, layout: CanvasLayout):
        topology.validate(layout)
        self.topology, self.layout = topology, layout
        names = layout.region_names
        n_frames = [len(layout.regions[n].frames) for n in names]
        self.cell_offset = dict(zip(names, np.cumsum([0] + n_frames[:-1]).tolist()))
        self.num_cells = sum(n_frames)
        self.label, atom_cells = self._atoms()
        self.weight = self._atom_weight(self._cell_weight(), atom_cells)  # (A, A)

    def _region_cells(self, name: str) -> torch.Tensor:
        """The cell of each position of a region, as a (frames, *spatial extents) block."""
        spec = self.layout.regions[name]
        cells = torch.arange(len(spec.frames)) + self.cell_offset[name]
        return cells.view(-1, *[1] * (spec.ndim - 1)).expand(spec.shape)

    def _atoms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Atom label per position (N,) and the cells of each atom (A, k); C marks 'no cell'.

        The last atom is always the empty one (no cell), used for padding.
        """
        C, names = self.num_cells, self.layout.region_names
        regions = self.layout.regions
        if not self.layout.allow_overlap:  # paint each region's cells onto the canvas grid
            label = torch.full(self.layout.shape, C, dtype=torch.long)
            for name in names:
                label[regions[name].slices] = self._region_cells(name)
            return label.reshape(-1), torch.arange(C + 1).unsqueeze(1)  # atoms = cells + empty
        member = torch.full((len(names), *self.layout.shape), C, dtype=torch.long)  # (R, T, *S)
        for r, name in enumerate(names):
            member[r][regions[name].slices] = self._region_cells(name)
        atom_cells, label = torch.unique(member.flatten(1), dim=1, return_inverse=True)
        empty = torch.full((len(names), 1), C, dtype=torch.long)
        return label, torch.cat([atom_cells, empty], dim=1).T  # (A, R)

    def _cell_weight(self) -> torch.Tensor:
        """Max connection weight from each query cell to each key cell. (C+1, C+1)"""
        C1 = self.num_cells + 1
        q, k, val = [], [], []  # gathered in Python, scattered once: thousands of connections
        for conn in self.topology.connections:
            fe = frame_edges(conn, self.layout)
            src0 = self.cell_offset[conn.src] - self.layout.regions[conn.src].bounds[0]
            dst0 = self.cell_offset[conn.dst] - self.layout.regions[conn.dst].bounds[0]
            q += [src0 + f for f in fe.src_frame]
            k += [dst0 + f for f in fe.dst_frame]
            val += [conn.weight * w for w in fe.weight]
        w = torch.zeros(C1 * C1)
        flat = torch.tensor(q, dtype=torch.long) * C1 + torch.tensor(k, dtype=torch.long)
        w.scatter_reduce_(0, flat, torch.tensor(val, dtype=torch.float32), reduce="amax")
        return w.view(C1, C1)

    @staticmethod
    def _atom_weight(cell_w: torch.Tensor, atom_cells: torch.Tensor) -> torch.Tensor:
        """Max over the cells of a query atom and a key atom. (A, A)"""
        A, k = atom_cells.shape
        out = torch.zeros(A, A)
        for i in range(k):  # k = 1 without overlap; number of regions with it
            for j in range(k):
                out = torch.maximum(out, cell_w[atom_cells[:, i]][:, atom_cells[:, j]])
        return out

    # -- read-offs ------------------------------------------------------------------------------

    @property
    def empty_atom(self) -> int:
        return self.weight.shape[0] - 1

    @cached_property
    def atom_counts(self) -> torch.Tensor:
        """Positions per atom. (A,)"""
        return torch.bincount(self.label, minlength=self.weight.shape[0])

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
        c = self.atom_counts.double()
        return float(c @ (self.weight > 0).double() @ c) / self.layout.num_positions ** 2

    def index_pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every connected (query, key) pair once, sorted by (query, key). (P,), (P,), (P,)"""
        order = torch.argsort(self.label, stable=True)  # positions grouped by atom
        counts = self.atom_counts
        start = torch.cumsum(counts, 0) - counts
        qa, ka = torch.nonzero(self.weight > 0, as_tuple=True)  # connected atom pairs
        sizes = counts[qa] * counts[ka]
        pair = torch.repeat_interleave(torch.arange(len(qa)), sizes)  # (P,) atom pair of each
        e = torch.arange(len(pair)) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes,
                                                              sizes)
        q = order[start[qa][pair] + e // counts[ka][pair]]
        k = order[start[ka][pair] + e % counts[ka][pair]]
        sort = torch.argsort(q * self.layout.num_positions + k)
        q, k = q[sort], k[sort]
        return q, k, self.weight[self.label[q], self.label[k]]

    def block_mask(self, block_size: int = 128, device: torch.device | str | None = None):
        """A FlexAttention `BlockMask` (B = H = 1, broadcast over batch and heads).

        Block (qb, kb) is full when every query-key pair in it is connected, partial when some
        are (its `mask_mod` looks the pair up through the atom labels), absent otherwise.
        Memory is O(nb² + N + A²), never O(N²).
        """
        from torch.nn.attention.flex_attention import BlockMask

        N = self.layout.num_positions
        nb = -(-N // block_size)
        pad = nb * block_size - N
        label = torch.cat([self.label, torch.full((pad,), self.empty_atom, dtype=torch.long)])
        A = self.weight.shape[0]
        # Sparse products: with thousands of atoms (a fleet of regions) a dense (nb, A) @ (A, A)
        # would cost nb·A² flops, while both factors hold few non-zeros.
        block = torch.arange(nb * block_size) // block_size
        with warnings.catch_warnings():  # torch flags its sparse kernels as beta
            warnings.simplefilter("ignore", UserWarning)
            counts = torch.sparse_coo_tensor(
                torch.stack([block, label]), torch.ones(len(label), dtype=torch.float64),
                (nb, A), check_invariants=False).coalesce()  # (nb, A) atom counts per block
            connected = (self.weight > 0).double().to_sparse()  # (A, A)
            per_key = torch.sparse.mm(connected, counts.t().coalesce())  # (A, nb)
            linked = torch.sparse.mm(counts, per_key).to_dense()  # (nb, nb) connected pairs
        full = linked == block_size * block_size
        partial = (linked > 0) & ~full

        def as_kv(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            num = blocks.sum(1, dtype=torch.int32)
            idx = torch.argsort((~blocks).to(torch.int8), dim=1, stable=True).to(torch.int32)
            return num[None, None].to(device), idx[None, None].to(device)

        allowed = (self.weight > 0).to(device)
        label = label.to(device)

        def mask_mod(b, h, q_idx, kv_idx):
            return allowed[label[q_idx], label[kv_idx]]

        return BlockMask.from_kv_blocks(*as_kv(partial), *as_kv(full), BLOCK_SIZE=block_size,
                                        mask_mod=mask_mod, seq_lengths=(N, N))


def lower(topology: CanvasTopology, layout: CanvasLayout) -> Lowering:
    """Validate `topology` against `layout` and lower it (see the module docstring)."""
    return Lowering(topology, layout)
