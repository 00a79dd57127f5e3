"""The latency platform registry: each platform is one small module registered under its name.

Adding a platform is one file::

    from prunekit.latency.platforms import Platform, register_platform

    @register_platform("my-runtime")
    class MyRuntime(Platform):
        requires = ("my_runtime",)
        extra = "my-runtime"

        def session(self, model, example_inputs, threads):
            compiled = my_runtime.compile(model)
            return lambda: compiled(example_inputs)

after which ``prunekit.latency.measure_latency(model, x, "my-runtime")``, lookup tables, NetAdapt's
latency budgets and every CLI ``--platform`` accept it.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from prunekit.errors import PrunekitError
from prunekit.latency.platforms.base import Platform
from prunekit.registry import Registry

P = TypeVar("P", bound=type[Platform])

PLATFORMS: Registry[type[Platform]] = Registry("platform")
"""Platform classes by name."""


def register_platform(name: str, *aliases: str) -> Callable[[P], P]:
    """Class decorator: register a :class:`Platform` subclass under ``name`` (and any aliases)."""

    def add(cls: P) -> P:
        cls.name = name
        return PLATFORMS.register(name, *aliases)(cls)

    return add


def list_platforms() -> list[str]:
    """Every registered platform name, sorted."""
    return PLATFORMS.names()


def get_platform(platform: str | Platform, **options: Any) -> Platform:
    """The platform called ``platform`` made with ``options`` (a :class:`Platform` is returned as it is).

    An unknown name is one error listing the valid ones; options a platform does not take are one
    error too. Options whose value is None are left out (not given).
    """
    given = {k: v for k, v in options.items() if v is not None}
    if isinstance(platform, Platform):
        if given:
            raise PrunekitError(f"platform options ({', '.join(sorted(given))}) go to get_platform, not with an "
                                f"already made {platform.name} platform")
        return platform
    cls = PLATFORMS.get(platform)
    return cls(**given)


def platform_help() -> str:
    """``one of a, b, c`` for CLI help texts."""
    return "one of " + ", ".join(list_platforms())


# the built-in platforms register themselves on import
from prunekit.latency.platforms import (  # noqa: E402,F401
    command, onnxruntime_cpu, onnxruntime_int8, openvino_cpu, openvino_int8, torch_cpu, torch_cuda,
)

__all__ = ["PLATFORMS", "Platform", "get_platform", "list_platforms", "platform_help", "register_platform"]
