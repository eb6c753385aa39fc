"""The canvas CogVideoX backbone on a tiny CogVideoX saved with `save_pretrained` to a temp dir:
shapes and dtypes, what trains, bit-exact identity at init against the unlooped frozen stack,
offline loading (local dir, hub cache), the missing-weights error and the diffusers fallback."""

import copy
import os
import subprocess
import sys
import warnings

import pytest
import torch

pytest.importorskip("diffusers")

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.cogvideox import CanvasCogVideoX, CogVideoXConfig
from canvas_engineering.models.cogvideox_load import (
    load_transformer,
    resolve_pretrained,
    save_tiny_cogvideox,
)
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

LAYOUT = CanvasLayout(T=2, H=4, W=4, d_model=32, t_current=1, regions={
    "cam": RegionSpec((0, 2, 0, 3, 0, 4)),
    "act": RegionSpec((0, 2, 3, 4, 0, 1), loss_weight=2.0),
})
CODECS = make_codecs(LAYOUT, {"cam": {"kind": "vector", "dim": 24},
                              "act": {"kind": "vector", "dim": 2}})


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_cogvideox(tmp_path_factory.mktemp("cogvideox") / "tiny", heads=2,
                               head_dim=8, layers=2)


def model(tiny_dir, dtype="float32", loops=3, **kw):
    torch.manual_seed(0)
    config = CogVideoXConfig(str(tiny_dir), d_model=32, loops=loops, dtype=dtype, **kw)
    return CanvasCogVideoX(LAYOUT, CanvasTopology.dense(LAYOUT), CODECS, config)


def inputs(B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = {r: torch.randn(B, c.num_positions, c.position_dim, generator=g)
         for r, c in CODECS.items()}
    return x, torch.rand(B, generator=g)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_output_shapes_and_dtypes(tiny_dir, dtype):
    m = model(tiny_dir, dtype)
    x, t = inputs()
    out = m(x, t)
    assert {r: tuple(v.shape) for r, v in out.items()} == {"cam": (2, 24, 2), "act": (2, 2, 2)}
    assert all(v.dtype == torch.float32 for v in out.values())
    assert all(torch.isfinite(v).all() for v in out.values())
    frozen = {p.dtype for p in m.transformer.parameters()}
    assert frozen == {getattr(torch, dtype)}  # the frozen blocks keep the checkpoint's dtype
    assert {p.dtype for p in m.parameters()} == {torch.float32}  # trainables are fp32
    assert m.inner_dim == 16


def test_only_trainables_get_gradients_and_change(tiny_dir):
    m = model(tiny_dir)
    frozen_before = {n: p.detach().clone() for n, p in m.transformer.named_parameters()}
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    x, t = inputs()
    target = {r: torch.randn_like(v) for r, v in x.items()}  # a real target, not out.pow(2)
    out = m(x, t)
    loss = sum((out[r] - target[r]).pow(2).mean() for r in out)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.0)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in m.transformer.parameters())
    # The state dict (what checkpoints hold) is the trainables only, none of the frozen blocks.
    assert set(m.state_dict()) == {n for n, _ in m.named_parameters()}
    assert not any("transformer_blocks" in k or "attn1" in k for k in m.state_dict())
    opt.step()
    for n, p in m.transformer.named_parameters():
        assert torch.equal(p, frozen_before[n]), n
    changed = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    # Everything with a path to the loss at init moves. Embeddings of loops >= 1 sit behind
    # gates that are 0 at init, so their gradient is exactly 0 in the first step.
    expected = {n for n, _ in m.named_parameters()
                if not n.endswith(("loop_emb", "loop_emb_enc"))}
    expected |= {f"blocks.{i}.{k}" for i in range(2) for k in ("loop_emb", "loop_emb_enc")}
    assert changed == expected
    for i in range(2):  # only row 0 of the loop embeddings moved
        emb = m.blocks[i].loop_emb
        assert not torch.equal(emb[0], before[f"blocks.{i}.loop_emb"][0])
        assert torch.equal(emb[1:], before[f"blocks.{i}.loop_emb"][1:])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("loops", [1, 3])
def test_looped_stack_is_the_frozen_stack_at_init(tiny_dir, dtype, loops):
    m = model(tiny_dir, dtype, loops=loops)
    x, t = inputs()
    with torch.no_grad():
        # Reference: the plain frozen blocks, each once, no loop parameters anywhere.
        temb = m.time_embedding(t)
        g = torch.Generator().manual_seed(5)
        h = torch.randn(2, 32, 16, generator=g).to(temb.dtype)
        e = torch.randn(2, 1, 16, generator=g).to(temb.dtype)
        ref_h, ref_e = h, e
        for block in m.transformer.transformer_blocks:
            ref_h, ref_e = block(ref_h, ref_e, temb)
        got_h, got_e = m.run_blocks(h, e, temb)
        assert torch.equal(got_h, ref_h) and torch.equal(got_e, ref_e)
        # The whole forward against the same pieces composed by hand.
        c = m.canvas.create_empty(2)
        for r, enc in m.encoders.items():
            c = m.canvas.place(c, enc(x[r]), r)
        hid = m.proj_in(c).to(temb.dtype)
        tok = m.encoder_token.expand(2, -1, -1).to(temb.dtype)
        for block in m.transformer.transformer_blocks:
            hid, tok = block(hid, tok, temb)
        c = m.norm_out(m.proj_out(hid.float()))
        ref = {r: dec(m.canvas.extract(c, r)) for r, dec in m.decoders.items()}
        out = m(x, t)
    assert all(torch.equal(out[r], ref[r]) for r in ref)


def test_the_sigmoid_gate_is_not_the_identity(tiny_dir):
    """The published σ(0) = 0.5 blend, kept for the paper, differs from the frozen stack."""
    zero, sig = model(tiny_dir), model(tiny_dir, gate="sigmoid")
    shared = {k: v for k, v in zero.state_dict().items() if "loop_gate" not in k}
    sig.load_state_dict(shared, strict=False)  # the gates differ in count; the rest is equal
    x, t = inputs()
    with torch.no_grad():
        assert not torch.allclose(zero(x, t)["cam"], sig(x, t)["cam"], atol=1e-4)


def test_checkpointing_gives_the_same_gradients(tiny_dir):
    plain, ckpt = model(tiny_dir), model(tiny_dir, checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    x, t = inputs()
    for m in (plain, ckpt):
        sum(v.sum() for v in m(x, t).values()).backward()
    for (n, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), n


def test_models_share_one_frozen_transformer(tiny_dir):
    frozen = load_transformer(str(tiny_dir), "float32")
    config = CogVideoXConfig(str(tiny_dir), d_model=32, loops=2, dtype="float32")
    a = CanvasCogVideoX(LAYOUT, CanvasTopology.dense(LAYOUT), CODECS, config, transformer=frozen)
    b = CanvasCogVideoX(LAYOUT, CanvasTopology.dense(LAYOUT), CODECS, config, transformer=frozen)
    pa, pb = (dict(m.transformer.named_parameters()) for m in (a, b))
    assert all(pa[k].data_ptr() == pb[k].data_ptr() for k in pa)
    assert sum(p.numel() for p in a.parameters()) < sum(p.numel() for p in frozen.parameters())


def test_loads_from_a_local_pipeline_folder_and_an_offline_hub_cache(tiny_dir, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    want = load_transformer(str(tiny_dir), "float32").state_dict()
    # A pipeline folder: the transformer in transformer/.
    pipe = tmp_path / "pipe"
    (pipe / "transformer").mkdir(parents=True)
    for f in tiny_dir.iterdir():
        os.link(f, pipe / "transformer" / f.name)
    assert resolve_pretrained(str(pipe)) == pipe / "transformer"
    # The hub cache layout: refs/main names the snapshot, whose transformer/ holds the files.
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--THUDM--CogVideoX-2b"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha / "transformer"
    snap.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        os.link(f, snap / f.name)
    got = load_transformer("THUDM/CogVideoX-2b", "float32", cache_dir=str(tmp_path / "hub"))
    assert resolve_pretrained("THUDM/CogVideoX-2b", str(tmp_path / "hub")) == snap
    assert all(torch.equal(v, want[k]) for k, v in got.state_dict().items())
    assert not any(p.requires_grad for p in got.parameters())


def test_missing_weights_name_every_place_looked(tmp_path):
    hub = tmp_path / "hub"
    with pytest.raises(FileNotFoundError) as e:
        resolve_pretrained("THUDM/CogVideoX-2b", str(hub))
    msg = str(e.value)
    assert "'THUDM/CogVideoX-2b'" in msg
    assert f"{hub}/models--THUDM--CogVideoX-2b/snapshots/<refs/main>/transformer/config.json" in msg
    assert f"{hub}/models--THUDM--CogVideoX-2b/snapshots/<refs/main>/config.json" in msg
    assert "THUDM/CogVideoX-2b/config.json" in msg and "transformer/config.json" in msg
    # A folder with a config but no weights is missing weights too, named with its path.
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="noweights/config.json"):
        load_transformer(str(tmp_path / "noweights"))


def test_without_diffusers_the_trainer_falls_back_to_scratch(tiny_dir, monkeypatch):
    from canvas_engineering.models.scratch import CanvasWorldModel
    from canvas_engineering.training import TrainConfig, build

    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    config = TrainConfig(backbone="cogvideox", pretrained_model_id=str(tiny_dir),
                         train_episodes=4, eval_episodes=2)
    with pytest.warns(RuntimeWarning, match=r"pip install 'canvas-engineering\[video\]'"):
        run = build(config)
    assert type(run.model) is CanvasWorldModel


def test_the_trainer_builds_the_cogvideox_backbone(tiny_dir):
    from canvas_engineering.training import ConfigError, TrainConfig, build

    config = TrainConfig().with_overrides(["--backbone=cogvideox", "--train_episodes=4",
                                           f"--pretrained_model_id={tiny_dir}",
                                           "--pretrained_dtype=float32", "--loops=2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # diffusers is here: no fallback warning
        run = build(config)
    assert type(run.model) is CanvasCogVideoX and run.model.config.loops == 2
    assert len(run.model.blocks) == 2 and run.model.blocks[0].max_loops == 2
    # scratch-only options are refused by name, not dropped
    scratch_only = config.with_overrides(['--backbone_options={"pixel_head": 8, "gate": "zero"}'])
    with pytest.raises(ConfigError, match=r"backbone_options: got \['pixel_head'\].*'d_model', "
                                          r"'loops', 'gate', 'checkpoint'"):
        build(scratch_only)
    with pytest.raises(ConfigError, match="pretrained_model_id: got None"):
        TrainConfig(backbone="cogvideox")
    with pytest.raises(ConfigError, match="pretrained_dtype: got 'int8'"):
        TrainConfig(pretrained_dtype="int8")
    assert TrainConfig().with_overrides(["--pretrained_model_id=null"]).pretrained_model_id is None


def test_importing_the_package_does_not_import_diffusers():
    code = ("import sys, canvas_engineering, canvas_engineering.models as m; "
            "assert 'cogvideox' in m.BACKBONES; print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_round_trips(tiny_dir):
    c = CogVideoXConfig(str(tiny_dir), d_model=48, loops=2, checkpoint=True)
    assert CogVideoXConfig.from_dict(copy.deepcopy(c.to_dict())) == c
    with pytest.raises(ValueError, match="dtype: got 'fp8'"):
        CogVideoXConfig(str(tiny_dir), dtype="fp8")
