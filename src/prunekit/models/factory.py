"""A user's own model factory, named ``package.module:function``: imported and called only on request."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from torch import nn

from prunekit.errors import PrunekitError

_FACTORY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def check_factory_name(path: str) -> None:
    """Refuse anything but ``package.module:function`` (dotted identifiers), before importing anything."""
    if not _FACTORY.match(path):
        raise PrunekitError(f"{shown(path)} is neither a model source (PREFIX:NAME) nor a package.module:function "
                            "factory")


def shown(name: str, limit: int = 200) -> str:
    """``name`` for a one-line message: as is when short and printable, else quoted and cut."""
    if name.isprintable() and len(name) <= limit:
        return name
    return repr(name[:limit])


def import_function(path: str, prefix: str = "", what: str = "") -> Any:
    """The callable a ``package.module:function`` path names (checked and permitted by the caller); an
    import error or a missing function is one line, starting with ``prefix``."""
    module_name, _, fn_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PrunekitError(f"{prefix}cannot import {what}{module_name!r}: {err}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise PrunekitError(f"{prefix}{module_name!r} has no callable {fn_name!r}")
    return fn


def call_factory(path: str, num_classes: int | None, in_channels: int, size: tuple[int, int],
                 **kwargs: Any) -> nn.Module:
    """Import ``package.module`` and call ``function`` with whichever of ``num_classes``, ``in_channels``
    and ``input_size`` it accepts, plus ``kwargs``. Only for names the user gave (see :mod:`prunekit.models.trust`)."""
    check_factory_name(path)
    fn = import_function(path, "", "model factory module ")
    offered = {"num_classes": num_classes, "in_channels": in_channels, "input_size": size}
    if num_classes is None:
        del offered["num_classes"]
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
