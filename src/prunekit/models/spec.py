"""``ModelSpec``: how to rebuild a model without pickle, and the checks on one read from a file."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from torch import nn

from prunekit.errors import PrunekitError

RESERVED = ("num_classes", "in_channels", "input_size", "weights")
"""Arguments ``create_model`` sets itself: a spec's ``kwargs`` may not name them."""
MAX_DEPTH = 32


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model without pickle: a source name (or factory path) and arguments.

    ``num_classes`` None means the source's own default (e.g. a YOLO yaml's ``nc``).
    """

    name: str
    num_classes: int | None = 10
    in_channels: int = 3
    input_size: tuple[int, int] = (32, 32)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: Any, origin: str = "model description") -> "ModelSpec":
        """Inverse of :meth:`to_dict`, checking every field (``origin`` names the file in errors).

        Only plain JSON values are accepted: a spec read from a file is data, never code.
        """
        if not isinstance(d, dict):
            raise PrunekitError(f"{origin}: 'model' must be a JSON object")
        name = d.get("name")
        if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 4096:
            raise PrunekitError(f"{origin}: 'model.name' must be a non-empty printable string")
        kwargs = d.get("kwargs", {})
        check_kwargs(kwargs, f"{origin}: 'model.kwargs'")
        classes = d.get("num_classes", 10)
        return cls(
            name=name,
            num_classes=None if classes is None else _positive_int(classes, f"{origin}: 'model.num_classes'"),
            in_channels=_positive_int(d.get("in_channels", 3), f"{origin}: 'model.in_channels'"),
            input_size=_size(d.get("input_size", [32, 32]), f"{origin}: 'model.input_size'"),
            kwargs=dict(kwargs),
        )

def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PrunekitError(f"{where} must be a positive integer, got {_short(value)}")
    return value


def _size(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise PrunekitError(f"{where} must be [height, width], got {_short(value)}")
    return (_positive_int(value[0], where), _positive_int(value[1], where))


def check_kwargs(kwargs: Any, where: str) -> None:
    """Model arguments must be a JSON object of plain JSON values, keyed by identifiers other than :data:`RESERVED`."""
    if not isinstance(kwargs, dict):
        raise PrunekitError(f"{where} must be a JSON object")
    for key, value in kwargs.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise PrunekitError(f"{where}: key {_short(key)} is not a valid argument name")
        if key in RESERVED:
            raise PrunekitError(f"{where}: {key!r} is set by prunekit itself and may not be given as a model argument")
        if not is_plain_json(value):
            raise PrunekitError(f"{where}: {key!r} must be a plain JSON value (string, number, bool, null, list, "
                                "object)")


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is made only of JSON's types (finite numbers, string-keyed objects), at most MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(is_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain_json(v, depth + 1) for k, v in value.items())
    return False


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


SPEC_ATTR = "_prunekit_spec"


def attach_spec(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """Remember on ``model`` how it was built, so that saving it needs no pickle; returns ``model``."""
    setattr(model, SPEC_ATTR, spec)
    return model


def spec_of(model: nn.Module) -> ModelSpec | None:
    """How ``model`` was built, if :func:`create_model` built it (None for a user's own instance)."""
    return getattr(model, SPEC_ATTR, None)


SourceBuilder = Callable[..., Any]
"""A model source's builder: ``(name, num_classes, in_channels, input_size, kwargs) -> nn.Module | Built``."""
