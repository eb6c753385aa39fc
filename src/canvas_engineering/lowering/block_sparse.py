"""Block-sparse structure of a lowering: which (query block, key block) pairs are full, partial
or empty, as FlexAttention's per-row index tables, without touching N² or nb² elements.

Shape glossary: N positions, bs block size, nb blocks, A atoms, P connected atom pairs,
nt block types, w table width.

A block's class depends only on the *set* of atoms in each block, not on how many positions
each atom holds: (qb, kb) is non-empty when some atom of qb reads some atom of kb, and full
when every atom of qb reads every atom of kb (the empty atom reads nothing, so a block with
padding or uncovered positions is never full). Blocks with equal atom sets are one *type*, and
rows of one type have equal index lists. In the execution order most blocks lie inside one
atom, so there are few types; the work is O(N + joins over types + the output tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from canvas_engineering.lowering.sparse import csr, expand

# Index tables are as wide as their widest row: FlexAttention's kernels read only the first
# num_blocks entries of a row (the Triton kernels address rows by stride and mask the look-ahead
# past the last one), so memory stays O(nb · widest row), not O(nb²). Only the compiled CPU
# kernel asserts a width of nb; `full_width=True` (canvas-order masks, which users may compile
# on CPU) keeps (nb, nb) tables up to this many blocks.
FULL_WIDTH_BLOCKS = 4096


@dataclass
class BlockTables:
    """Per-row block lists of one direction (kv: rows are query blocks; q: rows are key blocks).

    num (nb,) int32 and idx (nb, w) int32 for partial blocks; full_num / full_idx for full
    ones. Entries past a row's count are 0 and never read.
    """

    num: torch.Tensor
    idx: torch.Tensor
    full_num: torch.Tensor
    full_idx: torch.Tensor


def _table(row: torch.Tensor, col: torch.Tensor, n_rows: int, row_of_block: torch.Tensor,
           nb: int, full_width: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries (row type, block) -> per-block count (nb,) and index list (nb, w), ascending."""
    order = torch.argsort(row * nb + col)
    row, col = row[order], col[order]
    count = torch.bincount(row, minlength=n_rows)
    per_block = count[row_of_block]  # (nb,)
    width = nb if full_width and nb <= FULL_WIDTH_BLOCKS else max(int(per_block.max()), 1)
    if 2 * n_rows <= nb:  # few types: fill one row per type, then copy rows to their blocks
        table = torch.zeros(n_rows, width, dtype=torch.int32)
        slot = torch.arange(len(row)) - (torch.cumsum(count, 0) - count)[row]
        table[row, slot] = col.to(torch.int32)
        return per_block.to(torch.int32), table[row_of_block]
    # about one type per block: write each block's entries straight into its row, so no
    # second (types, w) table padded to the widest row exists next to the result
    start = torch.cumsum(count, 0) - count
    block = torch.repeat_interleave(torch.arange(nb), per_block)  # (E,) block of each entry
    slot = torch.arange(len(block)) - torch.repeat_interleave(torch.cumsum(per_block, 0)
                                                              - per_block, per_block)
    out = torch.zeros(nb, width, dtype=torch.int32)
    out[block, slot] = col[start[row_of_block][block] + slot].to(torch.int32)
    return per_block.to(torch.int32), out


def block_tables(label: torch.Tensor, q: torch.Tensor, k: torch.Tensor, num_atoms: int,
                 block_size: int, full_width: bool = False) -> tuple[BlockTables, BlockTables]:
    """The kv and q tables of a labelled sequence.

    Args: label (nb·bs,): atom of each position (padding: an atom that reads nothing);
        q, k (P,): the connected atom pairs, each once; full_width: (nb, nb) tables up to
        FULL_WIDTH_BLOCKS blocks (else each as wide as its widest row).
    Returns: (kv tables, q tables).
    """
    A, nb = num_atoms, len(label) // block_size
    # 1. the atom set of each block, from runs of equal (block, atom)
    key = torch.arange(len(label)) // block_size * A + label
    run = torch.ones(len(key), dtype=torch.bool)
    run[1:] = key[1:] != key[:-1]
    inc = torch.unique(key[run])  # sorted by block, then atom
    ib, ia = inc // A, inc % A
    per_block = torch.bincount(ib, minlength=nb)
    slot = torch.arange(len(ib)) - (torch.cumsum(per_block, 0) - per_block)[ib]
    sets = torch.full((nb, int(per_block.max())), -1, dtype=torch.long)  # (nb, atoms per block)
    sets[ib, slot] = ia
    # 2. block types: blocks with equal atom sets
    types, type_of_block = torch.unique(sets, dim=0, return_inverse=True)  # (nt, ·), (nb,)
    nt = len(types)
    tt, tslot = torch.nonzero(types >= 0, as_tuple=True)
    size = torch.bincount(tt, minlength=nt)  # atoms per type
    by_atom = csr(types[tt, tslot], A)
    # 3. type pairs: how many connected atom pairs link type s to type t
    e, s = expand(q, *by_atom, tt)
    e2, t = expand(k[e], *by_atom, tt)
    s = s[e2]
    pair, links = torch.unique(s * nt + t, return_counts=True)
    s, t = pair // nt, pair % nt
    full = links == size[s] * size[t]
    # 4. per type, the blocks of the types it links to (each block has one type: no duplicates)
    by_type = csr(type_of_block, nt)
    blocks = torch.arange(nb)
    out = []
    for rows, cols in ((s, t), (t, s)):  # kv: query type -> key blocks; q: the transpose
        tables = []
        for sel in (~full, full):
            which, col = expand(cols[sel], *by_type, blocks)
            tables += _table(rows[sel][which], col, nt, type_of_block, nb, full_width)
        out.append(BlockTables(*tables))
    return out[0], out[1]
