"""The registry of executable attention types: name -> `nn.Module` class.

Filled by the `@register_attention("name")` decorator on each family module; `register_attention`
also adds custom types at runtime and declares their names to `attention_types`, so a
`Connection(fn="my_type")` validates. `create_attention(name, d_model=..., n_heads=..., **options)`
builds one.
"""

from __future__ import annotations

import importlib
import inspect

from torch import nn

from canvas_engineering.errors import AttentionTypeError
from canvas_engineering.spec.attention_types import ATTENTION_TYPES, declare_attention_type

_REGISTRY: dict[str, type[nn.Module]] = {}
_INIT = "__init__(self, d_model, n_heads, **options)"
_FORWARD = "forward(self, x_q, x_kv, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0)"


def _check_convention(cls: type[nn.Module]) -> None:
    """Raise unless `cls` can be built as `create_attention` builds it and called as the
    dispatcher calls it, so a wrong signature fails where it is registered, not at the first
    forward pass. A signature Python cannot read is not judged."""
    for method, args, kwargs, expected in (
            ("__init__", (None, 8, 2), {}, _INIT),
            ("forward", (None, None, None),
             {"q_coords": None, "kv_coords": None, "kv_mask": None, "beta": 1.0}, _FORWARD)):
        try:
            sig = inspect.signature(getattr(cls, method))
        except (TypeError, ValueError):
            continue
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise AttentionTypeError(f"{cls.__qualname__}.{method}: got {method}{sig} ({e}), "
                                     f"expected {expected}") from None


def register_attention(name: str, cls: type[nn.Module] | None = None, *, replace: bool = False,
                       description: str = "", family: str = "custom", complexity: str = "?"):
    """Register `cls` under `name`; without `cls`, return a class decorator.

    The class must follow the calling convention of `canvas_engineering.attention`:
    `cls(d_model, n_heads, **options)` and
    `forward(x_q, x_kv, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0)`.
    Both signatures are checked here (AttentionTypeError), not at the first dispatch.
    Registering a name that already holds a different class raises unless `replace=True`.
    """
    if cls is None:
        def decorator(klass: type[nn.Module]) -> type[nn.Module]:
            register_attention(name, klass, replace=replace, description=description,
                               family=family, complexity=complexity)
            return klass
        return decorator
    if not isinstance(name, str) or not name.isidentifier():
        raise AttentionTypeError(f"name: got {name!r}, expected an identifier-like string")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise AttentionTypeError(f"cls: got {cls!r}, expected a subclass of torch.nn.Module")
    _check_convention(cls)
    old = _REGISTRY.get(name)
    if old is not None and old is not cls and not replace:
        raise AttentionTypeError(
            f"name: {name!r} is already registered to {old.__qualname__}; "
            "pass replace=True to override it"
        )
    if name not in ATTENTION_TYPES:
        doc = (cls.__doc__ or "").strip().splitlines()
        declare_attention_type(name, description or (doc[0] if doc else ""), family, complexity)
    _REGISTRY[name] = cls
    return cls


def _ensure_builtins() -> None:
    importlib.import_module(__package__)  # the package imports (so registers) every family


def attention_names() -> list[str]:
    """Sorted names of every registered attention type."""
    _ensure_builtins()
    return sorted(_REGISTRY)


def get_attention_class(name: str) -> type[nn.Module]:
    """The module class registered under `name`; unknown names list the valid ones."""
    _ensure_builtins()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise AttentionTypeError(
            f"attention type: got {name!r}, expected one of {sorted(_REGISTRY)}"
        ) from None


def create_attention(name: str, d_model: int, n_heads: int = 4, **options) -> nn.Module:
    """Build the attention module registered under `name`.

    Example: `create_attention("perceiver", d_model=64, n_heads=4, n_latents=8)`.
    """
    cls = get_attention_class(name)
    try:
        return cls(d_model, n_heads, **options)
    except TypeError as e:  # an unknown option: say which type rejected it
        raise TypeError(f"create_attention({name!r}): {e}") from e
