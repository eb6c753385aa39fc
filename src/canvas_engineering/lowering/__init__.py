"""Lowering: a declaration becomes tensors, with no parameters. The time rule turns connections
into frame edges; masks come in every form (dense, bool, additive, index pairs, block-sparse);
the dispatch plan says which positions each attention module reads. Pure functions of
(topology, layout), cached by the caller."""

from canvas_engineering.lowering.frame_edges import FrameEdges, frame_edges
from canvas_engineering.lowering.masks import Lowering, lower

__all__ = ["FrameEdges", "Lowering", "frame_edges", "lower"]
