"""CanvasSchema: a layout and a topology bundled as one portable, JSON-serialisable declaration.

Also the semantic comparison of regions: `transfer_distance` between two regions' embeddings and
`CanvasSchema.compatible_regions` across two schemas.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

from canvas_engineering.atomic import atomic_write
from canvas_engineering.errors import RegionError, SchemaError, bad, check_keys
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

FORMAT = "canvas-engineering/schema"
FORMAT_VERSION = 1


def transfer_distance(a: RegionSpec, b: RegionSpec) -> float:
    """Cosine distance (1 − cos) between two regions' semantic embeddings, in [0, 2]."""
    for name, spec in (("a", a), ("b", b)):
        if not isinstance(spec, RegionSpec):
            raise bad(name, spec, "a RegionSpec", RegionError)
        if spec.semantic_embedding is None:
            raise bad(f"{name}.semantic_embedding", None, "an embedding to compare", RegionError)
    ea, eb = a.semantic_embedding, b.semantic_embedding
    if len(ea) != len(eb):
        raise bad("b.semantic_embedding", f"length {len(eb)}", f"length {len(ea)} like a's",
                  RegionError)
    na, nb = math.sqrt(sum(x * x for x in ea)), math.sqrt(sum(x * x for x in eb))
    if na == 0 or nb == 0:
        raise bad("semantic_embedding", "a zero vector", "a non-zero embedding", RegionError)
    return 1.0 - sum(x * y for x, y in zip(ea, eb)) / (na * nb)


@dataclass(frozen=True)
class CanvasSchema:
    """The complete type signature of a canvas model: geometry, semantics, connectivity."""

    layout: CanvasLayout
    topology: CanvasTopology
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.layout, CanvasLayout):
            raise bad("layout", self.layout, "a CanvasLayout", SchemaError)
        if not isinstance(self.topology, CanvasTopology):
            raise bad("topology", self.topology, "a CanvasTopology", SchemaError)
        if not isinstance(self.metadata, dict):
            raise bad("metadata", self.metadata, "a JSON-serialisable dict", SchemaError)
        try:
            json.dumps(self.metadata)
        except (TypeError, ValueError) as e:
            raise bad("metadata", self.metadata, f"JSON-serialisable values ({e})",
                      SchemaError) from None
        self.topology.validate(self.layout)

    def compatible_regions(self, other: CanvasSchema, threshold: float = 0.3
                           ) -> list[tuple[str, str, float]]:
        """(this region, other region, distance) for region pairs with semantic embeddings of
        the same size whose transfer distance is at most `threshold`, closest first."""
        if not isinstance(other, CanvasSchema):
            raise bad("other", other, "a CanvasSchema", SchemaError)
        pairs = []
        for na, a in self.layout.regions.items():
            for nb, b in other.layout.regions.items():
                if a.semantic_embedding is None or b.semantic_embedding is None:
                    continue
                if len(a.semantic_embedding) != len(b.semantic_embedding):
                    continue
                d = transfer_distance(a, b)
                if d <= threshold:
                    pairs.append((na, nb, d))
        return sorted(pairs, key=lambda p: p[2])

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "layout": self.layout.to_dict(), "topology": self.topology.to_dict(),
                "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict) -> CanvasSchema:
        check_keys(data, {"format", "format_version", "layout", "topology"}, {"metadata"}, "schema")
        if data["format"] != FORMAT:
            raise bad("schema.format", data["format"], repr(FORMAT), SchemaError)
        if data["format_version"] != FORMAT_VERSION:
            raise bad("schema.format_version", data["format_version"], str(FORMAT_VERSION),
                      SchemaError)
        return cls(CanvasLayout.from_dict(data["layout"]),
                   CanvasTopology.from_dict(data["topology"]), data.get("metadata", {}))

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the schema as indented JSON, atomically (no half-written file on failure)."""
        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f, indent=2)

        atomic_write(path, write)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> CanvasSchema:
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise SchemaError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data)
