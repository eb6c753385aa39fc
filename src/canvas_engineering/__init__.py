"""canvas-engineering: a typed latent workspace for diffusion transformers.

Declare regions of a T × H × W canvas and a topology of attention operations between them; the
library compiles that declaration into index maps, loss masks, frame mappings and attention
structure, and supplies looped (weight-tied) transformer blocks that graft onto pretrained video
diffusion transformers.

`import canvas_engineering` needs only torch and numpy; integrations with optional dependencies
(diffusers, safetensors, accelerate) import them when used.
"""

# -- declarations: the canvas type system ------------------------------------------------------
from .attention_types import ATTENTION_TYPES
from .errors import (
    AttentionTypeError,
    CanvasError,
    OverlapError,
    PlacementError,
    RegionError,
    SchemaError,
    TopologyError,
)
from .layout import CanvasLayout, RegionSpec

# -- topology, lowering, schema (issue 2) ------------------------------------------------------
from .lowering import FrameEdges, Lowering, frame_edges, lower
from .schema import CanvasSchema, transfer_distance
from .topology import CanvasTopology, Connection, TemporalFill

# -- canvas module (issue 2) -------------------------------------------------------------------
from .canvas import PeriodEmbedding, SpatiotemporalCanvas

# -- typed schemas and process layer (issue 3) -------------------------------------------------
from .coarse import ConnectivityPolicy
from .compile import BoundField, BoundSchema, compile_schema
from .fields import CARRIERS, FAMILIES, Field, FieldError
from .packing import LayoutStrategy
from .program import (
    CLOCK_MODES,
    COMPILE_MODES,
    OPERATORS,
    CanvasProgram,
    Clock,
    LearningSpec,
    ProgramEdge,
    ProgramError,
    RegionProgram,
    compile_program,
    derive_operator,
)
from .program_compiler import CompiledProgram, ProgramCompiler, RegionModel
from .scheduler import RegionScheduler

# -- attention function library and dispatcher (issue 4) ---------------------------------------
from .attention import (
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
from .dispatcher import AttentionDispatcher

# -- looped blocks, grafting, schedules, checkpoints (issue 5) ---------------------------------
from .checkpoint import CheckpointError, load_loop_checkpoint, save_loop_checkpoint
from .graft import freeze_full, freeze_half, graft_looped_blocks
from .heads import ActionHead
from .looped import LoopedBlockWrapper
from .schedules import CurriculumScheduler, SharpeningSchedule

# -- the world model: data, codecs, backbone, diffusion, training (issue 6) ----------------------
from .backbone import BACKBONE_PRESETS, BackboneConfig, CanvasWorldModel
from .codecs import RegionCodec, VectorCodec, VideoCodec, make_codecs
from .data import EpisodeDirectory, PushConfig, PushDataset, make_episode
from .diffusion import CanvasDiffusion
from .training import TrainConfig, train

__version__ = "0.1.0"
