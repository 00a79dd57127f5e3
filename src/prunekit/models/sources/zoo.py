"""The ``zoo`` source: prunekit's own models sized for small images (names without a prefix)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from prunekit.errors import PrunekitError
from prunekit.models.layers import init_weights
from prunekit.models.registry import MODELS, check_model_name, register_model_source


@register_model_source("zoo")
def zoo_model(name: str, num_classes: int | None, in_channels: int, input_size: tuple[int, int],
              kwargs: dict[str, Any]) -> nn.Module:
    """A zoo model (see :func:`prunekit.list_models`), freshly initialised."""
    check_model_name(name)
    factory = MODELS.get(name)
    check_arguments(factory, kwargs, f"zoo model {name}")
    args: dict[str, Any] = {"in_channels": in_channels, "input_size": input_size}
    if num_classes is not None:
        args["num_classes"] = num_classes
    return init_weights(factory(**args, **kwargs))


def check_arguments(fn: Any, kwargs: dict[str, Any], what: str) -> None:
    """Refuse, in one line, keyword arguments that ``fn`` does not take."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        takes = sorted(set(params) - {"num_classes", "in_channels", "input_size"})
        raise PrunekitError(f"{what} does not take {', '.join(unknown)}; its options: {', '.join(takes) or 'none'}")
