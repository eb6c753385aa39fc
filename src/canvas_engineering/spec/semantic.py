"""Semantic types that compute: an embedder protocol, readable types for typed paths, and every
region of a schema embedded in one batched call.

Shape glossary: n texts, E embedding width.

An embedder is anything with a declared `model` name and `embed(texts) -> (n, E)`. Its
embeddings carry that name (`SemanticEmbedding.model`), a `RegionSpec` records it as
`embedding_model`, and `transfer_distance` / `compatible_regions` refuse to compare embeddings
whose models differ or are undeclared: distances between two models' spaces mean nothing
(seed 000: "The embedding model must be fixed and declared").

The default embedder (all-MiniLM-L6-v2, shipped by the `[semantic]` extra, never downloaded) is
in `integrations/semantic.py`; any callable plugs in through `FunctionEmbedder`:

    embed = FunctionEmbedder(my_api_embed, model="openai/text-embedding-3-small")
    spec = RegionSpec(bounds, semantic_type=t, semantic_embedding=embed(t))  # model recorded
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch

from canvas_engineering.errors import CanvasError, RegionError, bad
from canvas_engineering.spec.compile_schema import BoundField, BoundSchema
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.schema import CanvasSchema


class SemanticEmbedding(tuple):
    """A tuple of floats that remembers the model that produced it (`.model`)."""

    model: str

    def __new__(cls, values, model: str):
        if not isinstance(model, str) or not model:
            raise bad("model", model, "the non-empty name of the embedding model", RegionError)
        self = super().__new__(cls, (float(x) for x in values))
        self.model = model
        return self

    def __reduce__(self):  # pickles (and deep-copies) with its model name
        return (SemanticEmbedding, (tuple(self), self.model))


class Embedder:
    """The protocol: a declared `model` name and `embed(texts) -> (n, E)` (any array-like).

    Calling an embedder on one text gives a `SemanticEmbedding`, so the seed's
    `semantic_embedding=embed("RGB video ...")` records which model made it.
    """

    model: str = ""

    def embed(self, texts: Sequence[str]):  # pragma: no cover - the protocol
        raise NotImplementedError

    def __call__(self, text: str) -> SemanticEmbedding:
        return embed_texts(self, [text])[0]


class FunctionEmbedder(Embedder):
    """Any callable `fn(list[str]) -> (n, E)` as an embedder of the declared `model`."""

    def __init__(self, fn: Callable[[list[str]], object], *, model: str):
        if not callable(fn):
            raise bad("fn", fn, "a callable list[str] -> (n, E) array", CanvasError)
        if not isinstance(model, str) or not model:
            raise bad("model", model, "the non-empty name of the embedding model", CanvasError)
        self.fn, self.model = fn, model

    def embed(self, texts: Sequence[str]):
        return self.fn(list(texts))

    def __repr__(self) -> str:
        return f"FunctionEmbedder({getattr(self.fn, '__name__', self.fn)!r}, model={self.model!r})"


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> list[SemanticEmbedding]:
    """One `embedder.embed` call for all `texts`, checked: n rows of E finite floats, tagged
    with the embedder's model."""
    model = getattr(embedder, "model", None)
    if not callable(getattr(embedder, "embed", None)) or not isinstance(model, str) or not model:
        raise bad("embedder", embedder, "an object with a declared `model` name and "
                  "`embed(texts) -> (n, E)` (wrap a plain callable in FunctionEmbedder)",
                  CanvasError)
    texts = list(texts)
    if not all(isinstance(t, str) and t for t in texts):
        raise bad("texts", texts, "a list of non-empty strings", CanvasError)
    out = embedder.embed(texts)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().double().numpy()
    try:
        rows = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        rows = None
    if rows is None or rows.ndim != 2 or rows.shape[0] != len(texts) or rows.shape[1] == 0 \
            or not np.isfinite(rows).all():
        got = getattr(rows, "shape", type(out).__name__)
        raise bad(f"{model}: embed() output", got, f"({len(texts)}, E) finite floats, one row "
                  "per text", CanvasError)
    return [SemanticEmbedding(r.tolist(), model) for r in rows]


_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


def _singular(word: str) -> str:
    """'vehicles' -> 'vehicle', 'countries' -> 'country' (arrays are named in the plural)."""
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):  # class, status, axis
        return word[:-1]
    return word


def auto_semantic_type(path: str, *, coarse: bool = False) -> str:
    """Readable text for a typed-schema path, innermost part first: `"vehicles[3].camera"` →
    `"camera of vehicle 3"`, `"us.macro.gdp"` → `"gdp of macro of us"`, `"left_arm"` →
    `"left arm"`. `coarse`: the path names an object's coarse-grained field (`"summary of
    vehicle 3"`)."""
    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise bad("path", path, "a dotted field path such as 'vehicles[3].camera'", CanvasError)
    words = []
    for part in reversed(path.split(".")):
        m = _INDEX.match(part)
        name = part if m is None else f"{_singular(m.group(1))} {m.group(2)}"
        words.append(name.replace("_", " ").strip())
    text = " of ".join(words)
    return f"summary of {text}" if coarse else text


def _with_embeddings(layout: CanvasLayout, embedder: Embedder, coarse: set[str]) -> CanvasLayout:
    texts = {name: spec.semantic_type or auto_semantic_type(name, coarse=name in coarse)
             for name, spec in layout.regions.items()}
    vectors = embed_texts(embedder, list(texts.values()))
    regions = {name: dataclasses.replace(spec, semantic_type=texts[name], semantic_embedding=v,
                                         embedding_model=v.model)
               for (name, spec), v in zip(layout.regions.items(), vectors)}
    return dataclasses.replace(layout, regions=regions)


def compute_semantic_embeddings(schema: CanvasSchema | BoundSchema | CanvasLayout,
                                embedder: Embedder):
    """A copy of `schema` (a `CanvasSchema`, a `BoundSchema` or a `CanvasLayout`) whose every
    region has a semantic type (its declared one, else `auto_semantic_type` of its name) and that
    type's embedding from `embedder`, all in one batched `embed` call. Embeddings already there
    are replaced, so a schema is never left with two models' vectors."""
    if isinstance(schema, CanvasLayout):
        return _with_embeddings(schema, embedder, set())
    if isinstance(schema, CanvasSchema):
        return dataclasses.replace(schema, layout=_with_embeddings(schema.layout, embedder, set()))
    if isinstance(schema, BoundSchema):
        layout = _with_embeddings(schema.layout, embedder, set(schema.coarse_fields))
        fields = {p: BoundField(p, f.field, layout, f.coarse) for p, f in schema.fields.items()}
        return dataclasses.replace(schema, layout=layout, fields=fields)
    raise bad("schema", type(schema).__name__, "a CanvasSchema, a BoundSchema or a CanvasLayout",
              CanvasError)
