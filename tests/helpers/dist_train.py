"""Run under `accelerate launch`: train, then save this rank's parameters for the test."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from canvas_engineering.training import TrainConfig, train

config = TrainConfig().with_overrides(sys.argv[1:])
_, model = train(config, progress=False, evaluate_at_end=False, return_model=True)
import torch.distributed as dist

rank = dist.get_rank() if dist.is_initialized() else 0
state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
save_file(state, str(Path(config.out) / f"rank{rank}.safetensors"))
