"""Modules (`torch.nn`): the canvas embeddings, the attention dispatcher that runs a dispatch
plan, looped blocks and their sharpening, loop schedules (curriculum, β), action heads. The
attention families themselves live in `attention/`."""
