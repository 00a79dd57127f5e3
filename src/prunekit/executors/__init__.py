"""Executors that run NetAdapt's candidates: ``serial`` (in this process) and ``ray`` (optional extra)."""

from __future__ import annotations

from typing import Any

from prunekit.algorithms.netadapt import Executor, InProcess
from prunekit.errors import PrunekitError

EXECUTORS = ("serial", "ray")


def make_executor(name: str = "serial", **options: Any) -> Executor:
    """The executor called ``name``; ``options`` go to it (e.g. Ray's address and resources per candidate)."""
    if name == "serial":
        return InProcess()
    if name == "ray":
        from prunekit.executors.ray_executor import RayExecutor

        return RayExecutor(**options)
    raise PrunekitError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "make_executor"]
