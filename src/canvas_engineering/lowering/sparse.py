"""Sparse helpers of the lowering: row-grouped (CSR) joins, atom-pair lookups, and the execution
order. Everything here is linear in its inputs plus its output; nothing is (atoms)².

Shape glossary: A atoms, P connected atom pairs, E entries of a join.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

# Up to this many atoms an (A, A) table is the fastest lookup (16 MiB of float32); beyond it the
# lookup binary-searches the P sorted pair keys.
DENSE_LOOKUP_ATOMS = 2048


def csr(keys: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group entries by key: `perm` lists entries key by key (stable), `start` (n + 1,) marks
    where each key's run begins in `perm`."""
    perm = torch.argsort(keys, stable=True)
    start = torch.zeros(n + 1, dtype=torch.long)
    start[1:] = torch.cumsum(torch.bincount(keys, minlength=n), 0)
    return perm, start


def expand(items: torch.Tensor, perm: torch.Tensor, start: torch.Tensor,
           values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each entry i of `items`, every value of row items[i] of a `csr` grouping.

    Returns (which, value), (E,) each: `which` indexes `items`, in order.
    """
    first, count = start[items], start[items + 1] - start[items]
    which = torch.repeat_interleave(torch.arange(len(items)), count)  # (E,)
    offset = torch.arange(len(which)) - torch.repeat_interleave(torch.cumsum(count, 0) - count,
                                                                count)
    return which, values[perm[first[which] + offset]]


def reduce_max(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique sorted keys and the largest value of each."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    out = torch.zeros(len(uniq), dtype=values.dtype)
    out.scatter_reduce_(0, inv, values, reduce="amax", include_self=False)
    return uniq, out


def pair_lookup(q: torch.Tensor, k: torch.Tensor, values: torch.Tensor, num_atoms: int,
                default: float | bool, device=None):
    """A function (aq, ak) -> value of atom pair (aq, ak), `default` when the pair is absent.

    Small A: an (A, A) table. Large A: binary search of the sorted keys q·A + k, so memory
    stays O(P). Both forms broadcast and run under vmap (FlexAttention's mask and score mods).
    """
    A = num_atoms
    if A <= DENSE_LOOKUP_ATOMS:
        table = torch.full((A, A), default, dtype=values.dtype)
        table[q, k] = values
        table = table.to(device)
        return lambda aq, ak: table[aq, ak]
    keys, order = torch.sort(q * A + k)
    vals = values[order]
    if len(keys) == 0:  # nothing connected: a sentinel key no pair can equal
        keys, vals = torch.tensor([-1]), torch.tensor([default], dtype=values.dtype)
    keys, vals = keys.to(device), vals.to(device)
    fallback = torch.tensor(default, dtype=values.dtype, device=device)
    last = len(keys) - 1

    def lookup(aq, ak):
        key = aq * A + ak
        i = torch.searchsorted(keys, key).clamp(max=last)
        return torch.where(keys[i] == key, vals[i], fallback)

    return lookup


def atom_order(q: torch.Tensor, k: torch.Tensor, num_atoms: int) -> torch.Tensor:
    """A rank per atom (A,) for executing positions: breadth-first over the connection graph
    (either direction), each component from its most connected atom, neighbours in atom order.

    Atoms that read each other land next to each other, and the neighbours of a hub (the fleet's
    dispatch field reading every vehicle's summary) form one run instead of one per vehicle,
    so the block mask has few partial blocks and narrow rows. Unconnected atoms (the empty one
    included) go last, in atom order. Python over atoms and pairs: O(A + P).
    """
    A = num_atoms
    src = torch.cat([q, k])
    dst = torch.cat([k, q])
    keep = src != dst
    src, dst = src[keep], dst[keep]
    order = torch.argsort(src * A + dst)
    src, dst = src[order], dst[order]
    degree = torch.bincount(src, minlength=A)
    indptr = np.concatenate([[0], np.cumsum(degree.numpy())]).tolist()
    nbr = dst.numpy().tolist()
    connected = torch.zeros(A, dtype=torch.bool)
    connected[q] = True
    connected[k] = True
    seen = bytearray(A)
    ranked: list[int] = []
    for seed in torch.argsort(-degree, stable=True).tolist():
        if seen[seed] or not connected[seed]:
            continue
        seen[seed] = 1
        todo = deque([seed])
        while todo:
            a = todo.popleft()
            ranked.append(a)
            for b in nbr[indptr[a]:indptr[a + 1]]:
                if not seen[b]:
                    seen[b] = 1
                    todo.append(b)
    rest = torch.nonzero(~connected).squeeze(1)
    rank = torch.empty(A, dtype=torch.long)
    sequence = torch.cat([torch.tensor(ranked, dtype=torch.long), rest])
    rank[sequence] = torch.arange(A)
    return rank
