"""Measured latency of a model on a platform (see :mod:`prunekit.latency.platforms` for the list).

Robust on a shared, noisy machine: warm-up runs first, then repeated timings until both a
minimum count and a minimum time are reached; the median is the figure, the interquartile range
says how noisy it was.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

import torch
from torch import nn

from prunekit.latency.platforms import PLATFORMS, Platform, get_platform, list_platforms
from prunekit.latency.timing import LatencyResult, cpu_name, pinned_threads, steady_allocator

__all__ = ["PLATFORMS", "LatencyResult", "cpu_name", "list_platforms", "lowest_medians", "measure_latency",
           "pinned_threads", "platform_record", "steady_allocator"]


def platform_record(platform: str | Platform, threads: int | None = None, **options: Any) -> dict[str, Any]:
    """What identifies a platform's timings: its name, device, thread count and library versions.

    A platform whose runtime is missing here is one error naming the extra to install."""
    return get_platform(platform, **options).record(threads)


def measure_latency(
    model: nn.Module,
    example_inputs: torch.Tensor,
    platform: str | Platform = "torch-cpu",
    *,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    min_time_s: float = 0.5,
    **options: Any,
) -> LatencyResult:
    """Latency of one forward pass of ``example_inputs`` (its batch size is the batch) on ``platform``.

    ``platform`` is a registered name (``prunekit.latency.list_platforms()``) or a made
    :class:`Platform`; ``options`` go to the platform (e.g. ``command=`` for ``"command"``).
    ``threads`` pins the CPU thread count (default: torch's current setting); it is recorded
    with the device name, library versions and batch size in ``result.platform``. At least
    ``repeats`` timed runs and ``min_time_s`` seconds follow ``warmup`` untimed runs.
    """
    return get_platform(platform, **options).measure(model.eval(), example_inputs, threads=threads, warmup=warmup,
                                                     repeats=repeats, min_time_s=min_time_s)


def lowest_medians(nets: Mapping[Hashable, nn.Module], measure: Callable[[nn.Module], LatencyResult],
                   rounds: int) -> dict[Hashable, LatencyResult]:
    """Each network measured in ``rounds`` interleaved rounds, the lowest median of each kept: other jobs on a
    shared machine only ever add time, and a burst of them during one network's turn would tilt a comparison."""
    best: dict[Hashable, LatencyResult] = {}
    for _ in range(max(1, rounds)):
        for name, net in nets.items():
            m = measure(net)
            if name not in best or m.median_ms < best[name].median_ms:
                best[name] = m
    return best
