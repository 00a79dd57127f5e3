"""How NetAdapt measures a network: the real figure, and fast what-if estimates for candidate sizes."""

from __future__ import annotations

from typing import Callable, Protocol

from torch import nn

from prunekit.errors import PrunekitError
from prunekit.resources import measure
from prunekit.resources.estimator import ResourceEstimator
from prunekit.structure import ModelStructure, pruned_copy


class ResourceMetric(Protocol):
    """A resource NetAdapt can budget: ``of_model`` measures a network; ``what_if`` predicts one after removals."""

    name: str

    def of_model(self, model: nn.Module, example_inputs) -> float:
        """The resource of ``model``."""

    def what_if(self, structure: ModelStructure, example_inputs) -> Callable[[dict[str, int]], float]:
        """A function: {group: channels removed} -> resource of the network after those removals."""


class CountMetric:
    """MACs, FLOPs or parameters, counted by torch's FLOP counter (estimated from shapes for what-ifs)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def of_model(self, model: nn.Module, example_inputs) -> float:
        """Counted on the real model."""
        return measure(model, example_inputs).get(self.name)

    def what_if(self, structure: ModelStructure, example_inputs) -> Callable[[dict[str, int]], float]:
        """Exact shape arithmetic where possible; otherwise prune a copy and count it."""
        estimator = ResourceEstimator(structure, example_inputs)
        if estimator.exact:
            return lambda removed: estimator.estimate(removed).get(self.name)

        return lambda removed: self.of_model(pruned_copy(structure, removed).model, example_inputs)


def make_metric(resource: str, **settings) -> ResourceMetric:
    """The metric for a resource name; ``settings`` configure latency (platform, mode, lut, threads,
    min_channels_step: see :class:`prunekit.latency.metric.LatencyMetric`) and are ignored by counts."""
    if resource in ("macs", "flops", "params"):
        return CountMetric(resource)
    if resource == "latency":
        from prunekit.latency.metric import LatencyMetric

        return LatencyMetric(**settings)
    raise PrunekitError(f"unknown resource {resource!r}; valid: macs, flops, params, latency")
