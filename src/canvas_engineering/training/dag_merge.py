"""A join node's start: the mean of its parents' trainable parameters, matched by name and shape.

Only trainable parameters take part (a frozen pretrained backbone is shared, never merged, and
has no buffers to average). A parameter that some parents have with the same name and shape is
their plain mean (a copy when one parent has it); one that no parent has, or has only with
another shape, keeps its fresh init and is reported.
"""

from __future__ import annotations

import torch
from torch import nn


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Name → detached CPU copy of every trainable parameter."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
            if p.requires_grad}


def merge_parents(model: nn.Module, parents: dict[str, dict[str, torch.Tensor]]) -> dict:
    """Set each trainable parameter of `model` to the mean of the `parents`' values
    (parent name → `trainable_state`) of the same name and shape, in place.

    Returns the report: {"averaged": {param: [parents]}, "copied": {param: parent},
    "unmatched": {param: reason}}.
    """
    report = {"averaged": {}, "copied": {}, "unmatched": {}}
    if not parents:
        return report
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            have = [k for k, s in parents.items() if name in s]
            match = [k for k in have if parents[k][name].shape == p.shape]
            if not match:
                report["unmatched"][name] = (
                    "no parent has it" if not have else
                    "shape " + ", ".join(f"{k} {list(parents[k][name].shape)}" for k in have)
                    + f" vs {list(p.shape)}")
                continue
            mean = torch.stack([parents[k][name].float() for k in match]).mean(0)
            p.copy_(mean.to(p.dtype))
            if len(match) == 1:
                report["copied"][name] = match[0]
            else:
                report["averaged"][name] = match
    return report
