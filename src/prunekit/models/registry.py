"""The model registries and ``create_model``: zoo names, trusted sources (``torchvision:NAME``, ...)
and a user's own ``package.module:function`` factory."""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError, first_line
from prunekit.models.factory import call_factory
from prunekit.models.spec import ModelSpec, SourceBuilder, attach_spec, spec_of
from prunekit.registry import Registry

__all__ = ["MODELS", "MODEL_SOURCES", "Built", "ModelSpec", "attach_spec", "check_model_name", "create_model",
           "is_user_factory", "list_models", "parameter_bytes", "register_model", "register_model_source", "short_repr",
           "spec_of"]

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
"""Zoo models: each factory takes ``num_classes``, ``in_channels``, ``input_size`` (H, W) and options."""

register_model = MODELS.register

MODEL_SOURCES: Registry[SourceBuilder] = Registry("model source")
"""Trusted model sources by prefix: ``PREFIX:NAME`` is built by the builder registered as ``PREFIX``
(a name without a prefix by ``zoo``). A builder is called as ``builder(NAME, num_classes, in_channels,
input_size, kwargs)`` and returns the model, or a :class:`Built` when the spec to record differs from
the name asked for (e.g. a config file read into the arguments). Names read from a checkpoint
resolve only through this registry (or a factory the user allows: :mod:`prunekit.models.trust`)."""


def register_model_source(prefix: str) -> Callable[[SourceBuilder], SourceBuilder]:
    """Decorator: make ``PREFIX:NAME`` model names build through the decorated builder."""
    return MODEL_SOURCES.register(prefix)


@dataclass
class Built:
    """A source's model plus the name and arguments to record for it (so the checkpoint is self-contained)."""

    model: nn.Module
    name: str
    kwargs: dict[str, Any]


def split_name(name: str) -> tuple[str, str]:
    """``('zoo', name)`` for a zoo name, ``(PREFIX, REST)`` for ``PREFIX:REST``."""
    prefix, sep, rest = name.partition(":")
    return (prefix, rest) if sep else ("zoo", name)


def is_user_factory(name: str) -> bool:
    """Whether ``name`` is a ``package.module:function`` factory rather than a zoo name or a trusted source."""
    prefix, sep, _ = name.partition(":")
    return bool(sep) and prefix not in MODEL_SOURCES


def _size2(input_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(input_size, int):
        return (input_size, input_size)
    h, w = input_size
    return (int(h), int(w))


def short_repr(kwargs: dict[str, Any], limit: int = 120) -> str:
    """``kwargs`` for a one-line message (a Hugging Face config is hundreds of characters: cut)."""
    text = repr(kwargs)
    return text if len(text) <= limit else text[: limit - 4] + " ...}"


def _check_arguments(name: str, num_classes: Any, in_channels: Any, size: tuple[int, int],
                     kwargs: dict[str, Any]) -> None:
    """Refuse sizes below 1 and arguments that are not finite numbers, naming them (before any model is built)."""
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels), ("input_size", size[0]),
                         ("input_size", size[1])):
        if value is None and label == "num_classes":
            continue
        try:
            whole = operator.index(value) if not isinstance(value, bool) else None  # numpy integers too
        except TypeError:
            whole = None
        if whole is None or whole < 1:
            raise PrunekitError(f"{name}: {label} must be a positive integer, got {value!r}")
    for key, value in kwargs.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise PrunekitError(f"{name}: argument {key}={value} is not a finite number")


def list_models() -> list[str]:
    """The zoo's model names (``SOURCE:NAME`` for the sources of :data:`MODEL_SOURCES` and
    ``package.module:function`` are accepted too)."""
    return MODELS.names()


def check_model_name(name: str) -> None:
    """Raise the unknown-name error (listing valid models) early, before any data is loaded."""
    if ":" not in name:
        try:
            MODELS.get(name)
        except UnknownNameError as err:
            sources = ", ".join(f"{s}:NAME" for s in MODEL_SOURCES.names() if s != "zoo")
            raise UnknownNameError(f"{err}; or {sources}, or package.module:function for your own factory") from None


def create_model(
    name: str,
    num_classes: int | None = 10,
    in_channels: int = 3,
    input_size: int | tuple[int, int] = 32,
    *,
    weights: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a model by name, adapted to the data's channels, spatial size and number of classes.

    ``name`` is a zoo name (see :func:`list_models`), ``SOURCE:NAME`` for a trusted source
    (``torchvision:resnet18``, ``timm:resnet18``, ``hf:CONFIG.json``, ``ultralytics:yolov8n.yaml``:
    randomly initialised, nothing is downloaded), or ``package.module:function`` for a user's own
    factory, called with whichever of ``num_classes``, ``in_channels`` and ``input_size`` it accepts
    plus ``kwargs``. ``num_classes=None`` keeps the source's default. ``weights``: your own trained
    weights to load, a ``.safetensors`` file or a ``torch.save``-d state dict (read with
    ``weights_only=True``): see :func:`prunekit.models.weights.load_weights`.
    """
    size = _size2(input_size)
    _check_arguments(name, num_classes, in_channels, size, kwargs)
    try:
        if is_user_factory(name):
            built: Any = call_factory(name, num_classes, in_channels, size, **kwargs)
        else:
            prefix, rest = split_name(name)
            built = MODEL_SOURCES.get(prefix)(rest, num_classes, in_channels, size, dict(kwargs))
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        if isinstance(err, RuntimeError) and _allocation_failed(err):
            raise  # build_model names the file that asked for it
        extra = f" and {short_repr(kwargs)}" if kwargs else ""
        raise PrunekitError(f"{name} cannot be built with num_classes {num_classes}, in_channels {in_channels}, "
                            f"input_size {list(size)}{extra}: {first_line(err)}") from None
    if isinstance(built, Built):
        model, name, kwargs = built.model, built.name, built.kwargs
    else:
        model = built
    if isinstance(model, nn.Module):
        empty = next((n for n, p in model.named_parameters() if p.numel() == 0), None)
        if empty is not None:
            given = short_repr(kwargs) if kwargs else "its defaults"
            raise PrunekitError(f"{name} with {given} has a layer of no width ({empty}): give arguments that leave "
                                "every layer at least one channel")
    if weights is not None:
        from prunekit.models.weights import load_weights

        load_weights(model, weights, name)
    return attach_spec(model, ModelSpec(name, num_classes, in_channels, size, dict(kwargs)))


META_SOURCES = ("torchvision:", "timm:")
"""Sources whose models build on the meta device (the zoo's too): others (a YOLO head computes its strides with a
forward pass) would only fail there, for nothing."""


def parameter_bytes(spec: ModelSpec) -> int | None:
    """The bytes of the parameters and buffers of a model of ``spec``, found by building it on torch's ``meta``
    device (nothing is allocated, nothing is initialised); None where the model cannot be built that way, for
    sources not in META_SOURCES and for a user's factory (its code runs once, when the model is built for real)."""
    if is_user_factory(spec.name) or not (spec.name in MODELS.names() or spec.name.startswith(META_SOURCES)):
        return None
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_model(spec.name, spec.num_classes, spec.in_channels, spec.input_size, **spec.kwargs)
        return sum(t.numel() * t.element_size() for t in model.state_dict().values())
    except Exception:  # noqa: BLE001  (a model that needs real tensors to build is built for real, as before)
        return None


def build_model(spec: ModelSpec, origin: str | None = None) -> nn.Module:
    """A freshly initialised model of ``spec`` (use :func:`prunekit.io.load_checkpoint` for one read from a
    file: it checks that a factory named there is trusted first).

    ``origin`` names where ``spec`` was read (e.g. ``checkpoint DIR/model.json``): a description that asks
    for a model too large to allocate is then one error naming it, whatever field made it so."""
    try:
        return create_model(spec.name, spec.num_classes, spec.in_channels, spec.input_size, **spec.kwargs)
    except (MemoryError, RuntimeError) as err:
        if origin is None or not _allocation_failed(err):
            raise
        size = f"num_classes {spec.num_classes}, in_channels {spec.in_channels}, input_size {list(spec.input_size)}"
        extra = f", arguments {short_repr(spec.kwargs)}" if spec.kwargs else ""
        raise PrunekitError(f"{origin} describes a {spec.name} model too large to build in memory ({size}{extra}); "
                            "the file is damaged or edited: restore it or save the checkpoint again") from None


def _allocation_failed(err: BaseException) -> bool:
    """Whether ``err`` is a failed memory allocation (Python's MemoryError or torch's allocator error)."""
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return "allocate" in text or "out of memory" in text
