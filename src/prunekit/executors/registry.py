"""The executor registry: where NetAdapt's candidates run. A new executor is one file with a factory
decorated by :func:`register_executor` that returns an object with ``map(fn, shared, jobs)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prunekit.algorithms.netadapt import Executor
from prunekit.registry import Registry
from prunekit.settings import Settings, setting

EXECUTORS: Registry[Callable[["ExecutorConfig"], Executor]] = Registry("executor")
"""Executor name -> factory(ExecutorConfig) -> Executor."""

register_executor = EXECUTORS.register


def list_executors() -> list[str]:
    """Registered executor names."""
    return EXECUTORS.names()


@dataclass
class ExecutorConfig(Settings):
    """Where candidates run, and the options of distributed executors (Ray)."""

    executor: str = setting("serial", "where candidates run: serial (this process) or ray", choices=list_executors)
    ray_address: str | None = setting(None, "ray: 'auto' or HOST:PORT of a running cluster (default: start a "
                                            "local Ray)")
    cpus_per_candidate: float | None = setting(None, "ray: CPUs per candidate task (default 1)")
    gpus_per_candidate: float | None = setting(None, "ray: GPUs (or a fraction of one) per candidate task "
                                                     "(default 0)")
    max_retries: int | None = setting(None, "ray: retries of a candidate whose worker dies (default 2)")


def make_executor(config: ExecutorConfig | str = "serial", **options) -> Executor:
    """The executor a config (or a name and options) asks for."""
    if isinstance(config, str):
        config = ExecutorConfig.from_dict({"executor": config, **options}, source="executor options")
    return EXECUTORS.get(config.executor)(config)
