"""The public names of `canvas_engineering`: none may disappear when the package is reshaped."""

import canvas_engineering

# Every name `from canvas_engineering import ...` offered before the package was split into one
# folder per layer (issue 9). New names may be added; none of these may go.
PUBLIC = ["ATTENTION_TYPES", "ActionHead", "AttentionDispatcher", "AttentionModule", "AttentionTypeError", "BACKBONE_PRESETS", "BackboneConfig", "BoundField", "BoundSchema", "CARRIERS", "CLOCK_MODES", "COMPILE_MODES", "CanvasDiffusion", "CanvasError", "CanvasLayout", "CanvasProgram", "CanvasSchema", "CanvasTopology", "CanvasWorldModel", "CheckpointError", "Clock", "CogVideoXAttention", "CompiledProgram", "Connection", "ConnectivityPolicy", "CopyAttention", "CosineAttention", "CrossAttention", "CurriculumScheduler", "EpisodeDirectory", "FAMILIES", "Field", "FieldError", "FrameEdges", "GatedAttention", "HyenaAttention", "LayoutStrategy", "LearningSpec", "LinearAttention", "LocalAttention", "LoopedBlockWrapper", "Lowering", "MambaAttention", "MixtureAttention", "NoneAttention", "OPERATORS", "OverlapError", "PerceiverAttention", "PeriodEmbedding", "PlacementError", "PoolingAttention", "ProgramCompiler", "ProgramEdge", "ProgramError", "PushConfig", "PushDataset", "RWKVAttention", "RandomFixedAttention", "RegionCodec", "RegionError", "RegionModel", "RegionProgram", "RegionScheduler", "RegionSpec", "SchemaError", "SharpeningSchedule", "SigmoidAttention", "SparseAttention", "SpatiotemporalCanvas", "TemporalFill", "TopologyError", "TrainConfig", "VectorCodec", "VideoCodec", "__version__", "attention_names", "compile_program", "compile_schema", "create_attention", "derive_operator", "frame_edges", "freeze_full", "freeze_half", "get_attention_class", "graft_looped_blocks", "load_loop_checkpoint", "lower", "make_codecs", "make_episode", "register_attention", "save_loop_checkpoint", "train", "transfer_distance"]


def test_every_public_name_is_still_importable():
    missing = [name for name in PUBLIC if not hasattr(canvas_engineering, name)]
    assert missing == []


def test_public_names_are_defined_inside_the_package():
    # A reader finds each name's implementation in one jump: it lives in a package module.
    for name in PUBLIC:
        obj = getattr(canvas_engineering, name)
        module = getattr(obj, "__module__", None)
        if module is not None and callable(obj):
            assert module.startswith("canvas_engineering"), (name, module)
