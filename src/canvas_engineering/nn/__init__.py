"""Modules (`torch.nn`): the canvas embeddings, the attention dispatcher that runs a dispatch
plan, looped blocks and their sharpening, loop schedules (curriculum, β), action heads, the
region convolution, and a video region's pixel head and convolutional path (`video_unet`). The
attention families themselves live in `attention/`."""
