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
from canvas_engineering.errors import (
    CanvasError,
    RegionError,
    SchemaError,
    TopologyError,
    bad,
    check_keys,
    check_unique_keys,
    is_finite_number,
    json_object,
    located,
)
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

FORMAT = "canvas-engineering/schema"
FORMAT_VERSION = 1
# Deepest JSON nesting a schema file may have. The schema itself needs 5 levels (schema, layout,
# regions, region, bounds); the rest is room for metadata. Far deeper input is refused before
# anything recurses over it (json.dumps of the metadata would raise RecursionError).
MAX_JSON_DEPTH = 64


def _model_of(spec: RegionSpec, name: str) -> str:
    """The declared model of a region's embedding; none, or no model named, is an error."""
    if not isinstance(spec, RegionSpec):
        raise bad(name, spec, "a RegionSpec", RegionError)
    if spec.semantic_embedding is None:
        raise bad(f"{name}.semantic_embedding", None, "an embedding to compare", RegionError)
    if spec.embedding_model is None:
        raise bad(f"{name}.embedding_model", None, f"the name of the model that produced "
                  f"{name}.semantic_embedding (set embedding_model, or embed with an Embedder: "
                  "distances compare only within one declared model)", RegionError)
    return spec.embedding_model


def transfer_distance(a: RegionSpec, b: RegionSpec) -> float:
    """Cosine distance (1 − cos) between two regions' semantic embeddings, in [0, 2].

    Both embeddings must come from the same declared `embedding_model` (seed 000: "The embedding
    model must be fixed and declared so distances are comparable"); otherwise RegionError."""
    ma, mb = _model_of(a, "a"), _model_of(b, "b")
    if ma != mb:
        raise bad("b.embedding_model", mb, f"{ma!r} like a's (embeddings of different models "
                  "are not comparable; re-embed one with compute_semantic_embeddings)",
                  RegionError)
    ea, eb = a.semantic_embedding, b.semantic_embedding
    if len(ea) != len(eb):
        raise bad("b.semantic_embedding", f"length {len(eb)}", f"length {len(ea)} like a's",
                  RegionError)
    na, nb = math.sqrt(sum(x * x for x in ea)), math.sqrt(sum(x * x for x in eb))
    if na == 0 or nb == 0:
        raise bad("semantic_embedding", "a zero vector", "a non-zero embedding", RegionError)
    return 1.0 - sum(x * y for x, y in zip(ea, eb)) / (na * nb)


def _depth(data: object) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            stack += [(v, d + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def _parse(raw: bytes) -> object:
    """Strict JSON from file bytes: UTF-8, no repeated keys (see `json_object`), integers of at
    most Python's 4300 digits, at most MAX_JSON_DEPTH levels. Raises SchemaError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SchemaError(f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                          "expected a UTF-8 JSON file") from None
    try:
        data = json.loads(text, object_pairs_hook=json_object)
    except RecursionError:
        raise SchemaError("not valid JSON (nested too deeply for the parser); expected at "
                          f"most {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, or an integer with too many digits
        raise SchemaError(f"not valid JSON ({e})") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise SchemaError(f"JSON nested {_depth(data)} levels deep, expected at most "
                          f"{MAX_JSON_DEPTH} (MAX_JSON_DEPTH)")
    return data


@dataclass(frozen=True)
class CanvasSchema:
    """The complete type signature of a canvas model: geometry, semantics, connectivity.

    `topology` may be omitted (seed 000 declares it optional): a schema without one has every
    region attend to every region, itself included, at all frames — `CanvasTopology.dense(
    layout)`, a standard transformer over the regions' positions. The default is written out
    here, so `schema.topology` and the JSON file always name every connection.
    """

    layout: CanvasLayout
    topology: CanvasTopology | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.layout, CanvasLayout):
            raise bad("layout", self.layout, "a CanvasLayout", SchemaError)
        if self.topology is None:
            object.__setattr__(self, "topology", CanvasTopology.dense(self.layout))
        if not isinstance(self.topology, CanvasTopology):
            raise bad("topology", self.topology, "a CanvasTopology or None (dense)", SchemaError)
        if not isinstance(self.metadata, dict):
            raise bad("metadata", self.metadata, "a JSON-serialisable dict", SchemaError)
        try:
            json.dumps(self.metadata)
        except (TypeError, ValueError, RecursionError) as e:
            raise bad("metadata", type(self.metadata).__name__,
                      f"a dict of JSON-serialisable values ({type(e).__name__}: {e})",
                      SchemaError) from None
        try:
            self.topology.validate(self.layout)
        except TopologyError as e:  # say which half of the schema holds the connection
            raise TopologyError(f"topology.{e}") from None

    def compatible_regions(self, other: CanvasSchema, threshold: float = 0.3
                           ) -> list[tuple[str, str, float]]:
        """(this region, other region, distance) for region pairs whose transfer distance is at
        most `threshold`, closest first. Regions without an embedding are left out; embeddings
        of an undeclared model, or of another model than the rest, raise RegionError naming
        the region."""
        if not isinstance(other, CanvasSchema):
            raise bad("other", other, "a CanvasSchema", SchemaError)
        if not is_finite_number(threshold) or threshold < 0:
            raise bad("threshold", threshold, "a finite number >= 0", SchemaError)
        mine = {n: s for n, s in self.layout.regions.items() if s.semantic_embedding is not None}
        theirs = {n: s for n, s in other.layout.regions.items()
                  if s.semantic_embedding is not None}
        models = {}
        for side, regions in (("self", mine), ("other", theirs)):
            for n, spec in regions.items():
                where = f"{side}.layout.regions[{n!r}]"
                models.setdefault(_model_of(spec, where), where)
        if len(models) > 1:
            (m1, w1), (m2, w2) = list(models.items())[:2]
            raise bad(f"{w2}.embedding_model", m2, f"{m1!r} like {w1}'s (embeddings of "
                      "different models are not comparable)", RegionError)
        pairs = [(na, nb, transfer_distance(a, b))
                 for na, a in mine.items() for nb, b in theirs.items()]
        return sorted([p for p in pairs if p[2] <= threshold], key=lambda p: p[2])

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "layout": self.layout.to_dict(), "topology": self.topology.to_dict(),
                "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict) -> CanvasSchema:
        """A schema from its JSON object (`to_dict`); every error is a SchemaError naming the
        region or connection (by index) and the key."""
        check_keys(data, {"format", "format_version", "layout", "topology"}, {"metadata"}, "schema")
        if data["format"] != FORMAT:
            raise bad("schema.format", data["format"], repr(FORMAT), SchemaError)
        if type(data["format_version"]) is not int or data["format_version"] != FORMAT_VERSION:
            raise bad("schema.format_version", data["format_version"], str(FORMAT_VERSION),
                      SchemaError)
        check_unique_keys(data.get("metadata"), "metadata")
        layout = CanvasLayout.from_dict(data["layout"])
        topology = CanvasTopology.from_dict(data["topology"])
        try:
            return cls(layout, topology, data.get("metadata", {}))
        except CanvasError as e:
            raise located("", e) from e

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the schema as indented JSON, atomically (no half-written file on failure)."""
        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f, indent=2)

        atomic_write(path, write)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> CanvasSchema:
        """Read a schema file. A bad file raises SchemaError naming the file (and, inside it,
        the region or connection and the key); a missing or unreadable one raises OSError."""
        with open(path, "rb") as f:
            raw = f.read()
        try:
            return cls.from_dict(_parse(raw))
        except SchemaError as e:
            raise SchemaError(f"{path}: {e}") from e
