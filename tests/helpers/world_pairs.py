"""A world model with an optional module next to the same model without it, sharing every
weight they have in common, for tests that an optional module starts as the identity."""

from __future__ import annotations

import torch

from canvas_engineering.models.scratch import CanvasWorldModel, backbone_config


def with_and_without(schema, codecs, **options):
    """(plain, extended, x, t, want): the `debug` preset without and with `options`, the plain
    model's weights non-zero (std 0.05) and loaded into the extended one, random inputs x
    {region: (2, n_r, d_r)} and t (2,), and the plain model's output on them."""
    def model(**changes):
        torch.manual_seed(0)
        return CanvasWorldModel(schema.layout, schema.topology, codecs,
                                backbone_config("debug", **changes))

    plain, extended = model(), model(**options)
    for p in plain.parameters():  # non-zero outputs, so equality is not 0 == 0
        torch.nn.init.normal_(p, std=0.05)
    extended.load_state_dict(plain.state_dict(), strict=False)
    g = torch.Generator().manual_seed(1)
    x = {r: torch.randn(2, c.num_positions, c.position_dim, generator=g)
         for r, c in codecs.items()}
    t = torch.rand(2, generator=g)
    return plain, extended, x, t, plain(x, t)
