"""A typed schema for `--canvas=helpers.typed_canvas:arm` tests: a camera and an action."""

from dataclasses import dataclass, field

from canvas_engineering import Field, compile_schema


@dataclass
class Arm:
    camera: Field = field(default_factory=lambda: Field(6, 6, semantic_type="RGB patches"))
    action: Field = field(default_factory=lambda: Field(1, 1, loss_weight=2.0))


def arm():
    return compile_schema(Arm(), T=5, d_model=64, t_current=2)


NOT_COMPILED = Arm()
