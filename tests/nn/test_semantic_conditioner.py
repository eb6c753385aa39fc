"""SemanticConditioner: the identity at init (bit for bit, alone and inside the world model),
and it learns what only the regions' declared types can tell apart."""

import pytest
import torch
from torch import nn

from canvas_engineering import (
    BackboneConfig,
    CanvasLayout,
    CanvasTopology,
    CanvasWorldModel,
    FunctionEmbedder,
    RegionError,
    RegionSpec,
    SemanticConditioner,
    VectorCodec,
    compute_semantic_embeddings,
)

TYPES = {"left": "RGB camera", "right": "joint angles", "pad": "padding"}


def one_hot(texts):
    """A stand-in embedder: one axis per known type."""
    names = list(TYPES.values())
    return [[float(t == n) for n in names] for t in texts]


def layout(d_model=8, embed=True):
    lay = CanvasLayout(T=2, H=2, W=3, d_model=d_model, regions={
        "left": RegionSpec((0, 2, 0, 2, 0, 1), semantic_type=TYPES["left"]),
        "right": RegionSpec((0, 2, 0, 2, 1, 2), semantic_type=TYPES["right"]),
        "pad": RegionSpec((0, 2, 0, 2, 2, 3), semantic_type=TYPES["pad"])})
    return compute_semantic_embeddings(lay, FunctionEmbedder(one_hot, model="one-hot")) \
        if embed else lay


def test_identity_at_init_and_adds_per_region_vectors_once_trained():
    lay = layout()
    cond = SemanticConditioner(lay)
    x = torch.randn(3, lay.num_positions, 8)
    assert torch.equal(cond(x), x)
    with torch.no_grad():
        cond.weight.copy_(torch.randn(8, 3))
        cond.bias.zero_()
    out = cond(x)
    for r, name in enumerate(["left", "right", "pad"]):  # reference: weight @ one-hot = column r
        idx = lay.region_index_tensor(name)
        assert torch.allclose(out[:, idx] - x[:, idx], cond.weight[:, r].expand(3, len(idx), 8))


def test_needs_embeddings_of_one_model():
    with pytest.raises(RegionError, match=r"regions without semantic_embedding: got \['left', "
                                          r"'right', 'pad'\]"):
        SemanticConditioner(layout(embed=False))
    lay = layout()
    bare = CanvasLayout(T=2, H=2, W=3, d_model=8, regions={**lay.regions,
                                                           "pad": RegionSpec((0, 2, 0, 2, 2, 3))})
    with pytest.raises(RegionError, match=r"got \['pad'\]"):
        SemanticConditioner(bare)
    assert SemanticConditioner(bare, allow_missing=True).names == ["left", "right"]


def test_learns_what_only_region_identity_tells():
    """Every position gets the same input; the target is +1 on `left`, -1 on `right`, 0 on `pad`.
    Without the region's type no model can do better than predicting the mean (MSE = 2/3,
    the targets' variance); with the conditioner the loss falls towards 0."""
    lay = layout()
    target = torch.zeros(lay.num_positions)
    target[lay.region_index_tensor("left")] = 1.0
    target[lay.region_index_tensor("right")] = -1.0
    floor = float(target.var(unbiased=False))  # best constant prediction's MSE: 2/3

    def train(with_conditioner: bool) -> float:
        torch.manual_seed(0)
        cond = SemanticConditioner(lay) if with_conditioner else nn.Identity()
        readout = nn.Linear(8, 1)
        x = torch.ones(4, lay.num_positions, 8)
        opt = torch.optim.Adam([*cond.parameters(), *readout.parameters()], lr=0.05)
        for _ in range(150):
            loss = ((readout(cond(x)).squeeze(-1) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    without, with_ = train(False), train(True)
    assert without > floor - 1e-3
    assert with_ < 0.05 * floor


def _codecs(lay):
    return {"left": VectorCodec(lay, "left", dim=4), "right": VectorCodec(lay, "right", dim=2)}


def test_world_model_toggle_is_off_by_default_and_the_identity_when_on():
    lay = layout(d_model=16)
    topo = CanvasTopology.dense(lay)
    off_config = BackboneConfig(d_model=16, n_heads=2, n_blocks=1, loops=1, freq_dim=8)
    assert off_config.semantic is False
    torch.manual_seed(0)
    off = CanvasWorldModel(lay, topo, _codecs(lay), off_config)
    assert off.semantic is None and not any("semantic" in k for k in off.state_dict())
    on_config = BackboneConfig(d_model=16, n_heads=2, n_blocks=1, loops=1, freq_dim=8,
                               semantic=True)
    torch.manual_seed(0)
    on = CanvasWorldModel(lay, topo, _codecs(lay), on_config)
    # the conditioner draws no random numbers: every other parameter is initialised the same
    assert {k for k in on.state_dict() if k.startswith("semantic.")} == {"semantic.weight",
                                                                        "semantic.bias"}
    on_rest = {k: v for k, v in on.state_dict().items() if not k.startswith("semantic.")}
    assert on_rest.keys() == off.state_dict().keys()
    assert all(torch.equal(v, off.state_dict()[k]) for k, v in on_rest.items())
    # make the model non-trivial (zero-init decoders would hide any difference), then compare
    with torch.no_grad():
        for p in off.parameters():
            p.add_(0.1 * torch.randn_like(p))
    on.load_state_dict(off.state_dict(), strict=False)
    x = {"left": torch.randn(2, 4, 2), "right": torch.randn(2, 4, 1)}
    t = torch.tensor([0.3, 0.8])
    a, b = off(x, t), on(x, t)
    assert all(torch.equal(a[r], b[r]) for r in a)
    with pytest.raises(RegionError, match="semantic_embedding"):
        CanvasWorldModel(layout(d_model=16, embed=False), topo, _codecs(lay), on_config)
