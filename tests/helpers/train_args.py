"""A tiny training configuration shared by the resume and distributed tests."""

TINY = {"preset": "debug", "loops": 2, "steps": 40, "batch_size": 4, "checkpoint_every": 5,
        "log_every": 5, "train_episodes": 16, "eval_episodes": 4, "warmup": 2, "seed": 3,
        "sample_steps": 2, "lr": 2e-3}


def overrides(**changes) -> list[str]:
    import json

    merged = {**TINY, **changes}
    return [f"--{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in merged.items()]
