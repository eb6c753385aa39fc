"""canvas-engineering: a typed latent workspace for diffusion transformers.

Declare regions of a T × H × W canvas and a topology of attention operations between them; the
library compiles that declaration into index maps, loss masks, frame mappings and attention
structure, and supplies looped (weight-tied) transformer blocks that graft onto pretrained video
diffusion transformers.

`import canvas_engineering` needs only torch and numpy; integrations with optional dependencies
(diffusers, safetensors, accelerate) import them when used.
"""

# Grouped by layer, in the order data flows (README, "Layout of the code").

# -- errors: every error class (all ValueErrors) -----------------------------------------------
from canvas_engineering.errors import (
    AttentionTypeError,
    CanvasError,
    CheckpointError,
    FieldError,
    OverlapError,
    PlacementError,
    ProgramError,
    RegionError,
    SchemaError,
    TopologyError,
)

# -- spec/: declarations ------------------------------------------------------------------------
from canvas_engineering.spec.attention_types import ATTENTION_TYPES
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.connection import Connection, TemporalFill
from canvas_engineering.spec.topology import CanvasTopology
from canvas_engineering.spec.schema import CanvasSchema, transfer_distance
from canvas_engineering.spec.fields import CARRIERS, FAMILIES, Field
from canvas_engineering.spec.packing import LayoutStrategy
from canvas_engineering.spec.coarse import ConnectivityPolicy
from canvas_engineering.spec.compile_schema import BoundField, BoundSchema, compile_schema
from canvas_engineering.spec.semantic import (
    Embedder,
    FunctionEmbedder,
    SemanticEmbedding,
    auto_semantic_type,
    compute_semantic_embeddings,
)

# -- process/: region programs, clocks, compiler passes -----------------------------------------
from canvas_engineering.process.program import (
    CLOCK_MODES,
    COMPILE_MODES,
    OPERATORS,
    CanvasProgram,
    Clock,
    LearningSpec,
    ProgramEdge,
    RegionProgram,
    compile_program,
    derive_operator,
)
from canvas_engineering.process.scheduler import RegionScheduler
from canvas_engineering.process.compiler import CompiledProgram, ProgramCompiler, RegionModel

# -- lowering/: frame edges, masks --------------------------------------------------------------
from canvas_engineering.lowering.frame_edges import FrameEdges, frame_edges
from canvas_engineering.lowering.masks import Lowering, lower

# -- attention/: the 18 attention function types and their registry ----------------------------
from canvas_engineering.attention import (
    AttentionModule,
    CogVideoXAttention,
    CopyAttention,
    CosineAttention,
    CrossAttention,
    GatedAttention,
    HyenaAttention,
    LinearAttention,
    LocalAttention,
    MambaAttention,
    MixtureAttention,
    NoneAttention,
    PerceiverAttention,
    PoolingAttention,
    RandomFixedAttention,
    RWKVAttention,
    SigmoidAttention,
    SparseAttention,
    attention_names,
    create_attention,
    get_attention_class,
    register_attention,
)

# -- nn/: canvas embeddings, dispatcher, looped blocks, loop schedules, heads -------------------
from canvas_engineering.nn.canvas import PeriodEmbedding, SpatiotemporalCanvas
from canvas_engineering.nn.dispatcher import AttentionDispatcher
from canvas_engineering.nn.looped import LoopedBlockWrapper
from canvas_engineering.nn.loop_schedules import CurriculumScheduler, SharpeningSchedule
from canvas_engineering.nn.heads import ActionHead
from canvas_engineering.nn.semantic import SemanticConditioner

# -- data/: built-in task, episode files, region codecs -----------------------------------------
from canvas_engineering.data import EpisodeDirectory, PushConfig, PushDataset, make_episode
from canvas_engineering.data.codecs import RegionCodec, VectorCodec, VideoCodec, make_codecs

# -- integrations/: diffusers grafting, loop checkpoints ----------------------------------------
from canvas_engineering.integrations.diffusers_graft import (
    freeze_full,
    freeze_half,
    graft_looped_blocks,
)
from canvas_engineering.integrations.loop_checkpoint import (
    load_loop_checkpoint,
    save_loop_checkpoint,
)
from canvas_engineering.integrations.semantic import MiniLMEmbedder, default_embedder

# -- models/: whole denoisers -------------------------------------------------------------------
from canvas_engineering.models import BACKBONES
from canvas_engineering.models.scratch import BACKBONE_PRESETS, BackboneConfig, CanvasWorldModel

# -- training/: the diffusion objective and the trainer -----------------------------------------
from canvas_engineering.training.diffusion import CanvasDiffusion
from canvas_engineering.training import TrainConfig, train

__version__ = "0.1.0"
