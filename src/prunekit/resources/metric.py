"""How NetAdapt and budgeted pruning measure a network: the real figure, and fast what-if estimates.

Resources are a registry: ``macs``, ``flops`` and ``params`` (counted) live in
``resources/counts.py``, ``latency`` (timed or predicted) in ``resources/latency.py``. A new one is
one file with a factory decorated by :func:`register_resource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from torch import nn

from prunekit.registry import Registry
from prunekit.structure import ModelStructure


class ResourceMetric(Protocol):
    """A resource a budget can be set in: ``of_model`` measures a network; ``what_if`` predicts one after removals.

    Optional attributes NetAdapt reads: ``stepwise`` (True: the resource falls in steps as a group narrows, so a
    share cut may grow to the next step; default False) and ``cheap_what_if`` (False: each ``what_if`` call is a
    measurement, so few widths are tried; default True)."""

    name: str

    def of_model(self, model: nn.Module, example_inputs) -> float:
        """The resource of ``model``."""

    def what_if(self, structure: ModelStructure, example_inputs) -> Callable[[dict[str, int]], float]:
        """A function: {group: channels removed} -> resource of the network after those removals."""


@dataclass
class MetricContext:
    """What a resource factory may use: the channel step, progress display, and resource-specific
    settings (``latency``: a :class:`prunekit.latency.config.LatencyConfig`)."""

    min_channels_step: int = 1
    progress: bool = False
    options: dict[str, Any] = field(default_factory=dict)


RESOURCES: Registry[Callable[[MetricContext], ResourceMetric]] = Registry("resource")
"""Resource name -> factory(context) -> ResourceMetric."""

register_resource = RESOURCES.register


RESOURCE_UNITS: dict[str, str] = {"latency": "ms"}
"""The unit a resource's figures are in, where it has one (counts have none); a new resource with a unit adds it."""


def resource_label(resource: str) -> str:
    """A column or axis name for ``resource``: ``latency (ms)``, ``macs``."""
    unit = RESOURCE_UNITS.get(resource)
    return f"{resource} ({unit})" if unit else resource


def list_resources() -> list[str]:
    """Registered resource names."""
    return RESOURCES.names()


def make_metric(resource: str, context: MetricContext | None = None) -> ResourceMetric:
    """The metric registered as ``resource`` (unknown names list the valid ones)."""
    return RESOURCES.get(resource)(context or MetricContext())
