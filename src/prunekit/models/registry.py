"""The model registry and ``create_model``: zoo names, ``torchvision:NAME`` and ``package.module:function``."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
"""Zoo models: each factory takes ``num_classes``, ``in_channels``, ``input_size`` (H, W) and options."""

register_model = MODELS.register


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model without pickle: a registry name (or factory path) and arguments."""

    name: str
    num_classes: int = 10
    in_channels: int = 3
    input_size: tuple[int, int] = (32, 32)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=d["name"],
            num_classes=int(d.get("num_classes", 10)),
            in_channels=int(d.get("in_channels", 3)),
            input_size=tuple(int(s) for s in d.get("input_size", (32, 32))),  # type: ignore[arg-type]
            kwargs=dict(d.get("kwargs", {})),
        )

    def build(self) -> nn.Module:
        """A freshly initialised model of this spec."""
        return create_model(
            self.name, self.num_classes, self.in_channels, self.input_size, **self.kwargs
        )


SPEC_ATTR = "_prunekit_spec"


def attach_spec(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """Remember on ``model`` how it was built, so that saving it needs no pickle; returns ``model``."""
    setattr(model, SPEC_ATTR, spec)
    return model


def spec_of(model: nn.Module) -> ModelSpec | None:
    """How ``model`` was built, if :func:`create_model` built it (None for a user's own instance)."""
    return getattr(model, SPEC_ATTR, None)


def _size2(input_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(input_size, int):
        return (input_size, input_size)
    h, w = input_size
    return (int(h), int(w))


def list_models() -> list[str]:
    """The zoo's model names (``torchvision:NAME`` and ``module:function`` are accepted too)."""
    return MODELS.names()


def check_model_name(name: str) -> None:
    """Raise the unknown-name error (listing valid models) early, before any data is loaded."""
    if ":" not in name:
        try:
            MODELS.get(name)
        except UnknownNameError as err:
            raise UnknownNameError(f"{err}; or torchvision:NAME, or package.module:function for your own factory") from None


def create_model(
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    input_size: int | tuple[int, int] = 32,
    **kwargs: Any,
) -> nn.Module:
    """Build a model by name, adapted to the data's channels, spatial size and number of classes.

    ``name`` is a zoo name (see :func:`list_models`), ``torchvision:NAME`` for any torchvision
    classification model (randomly initialised: nothing is downloaded), or
    ``package.module:function`` for a user's own factory, called with whichever of
    ``num_classes``, ``in_channels`` and ``input_size`` it accepts plus ``kwargs``.
    """
    size = _size2(input_size)
    if name.startswith("torchvision:"):
        from prunekit.models.external import torchvision_model

        model = torchvision_model(name.split(":", 1)[1], num_classes, in_channels, size, **kwargs)
        return attach_spec(model, ModelSpec(name, num_classes, in_channels, size, dict(kwargs)))
    if ":" in name:
        model = _user_factory(name, num_classes, in_channels, size, **kwargs)
        return attach_spec(model, ModelSpec(name, num_classes, in_channels, size, dict(kwargs)))
    check_model_name(name)
    factory = MODELS.get(name)
    from prunekit.models.layers import init_weights

    model = init_weights(factory(num_classes=num_classes, in_channels=in_channels, input_size=size, **kwargs))
    return attach_spec(model, ModelSpec(name, num_classes, in_channels, size, dict(kwargs)))


def _user_factory(
    path: str, num_classes: int, in_channels: int, size: tuple[int, int], **kwargs: Any
) -> nn.Module:
    module_name, _, fn_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PrunekitError(f"cannot import model factory module {module_name!r}: {err}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise PrunekitError(f"{module_name!r} has no callable {fn_name!r}")
    offered = {"num_classes": num_classes, "in_channels": in_channels, "input_size": size}
    try:
        params = inspect.signature(fn).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        args = {k: v for k, v in offered.items() if takes_any or k in params}
    except (TypeError, ValueError):
        args = {}
    model = fn(**args, **kwargs)
    if not isinstance(model, nn.Module):
        raise PrunekitError(f"{path} returned {type(model).__name__}, not a torch.nn.Module")
    return model
