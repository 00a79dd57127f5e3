"""MACs, FLOPs and parameters as budgetable resources, counted by torch's FLOP counter."""

from __future__ import annotations

from typing import Callable

from torch import nn

from prunekit.resources.counter import count
from prunekit.resources.estimator import ResourceEstimator
from prunekit.resources.metric import MetricContext, register_resource
from prunekit.structure import ModelStructure, pruned_copy


class CountMetric:
    """MACs, FLOPs or parameters, counted on the real model (estimated from shapes for what-ifs)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def of_model(self, model: nn.Module, example_inputs) -> float:
        """Counted on the real model."""
        return count(model, example_inputs).get(self.name)

    def what_if(self, structure: ModelStructure, example_inputs) -> Callable[[dict[str, int]], float]:
        """Exact shape arithmetic where possible; otherwise prune a copy and count it."""
        estimator = ResourceEstimator(structure, example_inputs)
        if estimator.exact:
            return lambda removed: estimator.estimate(removed).get(self.name)

        return lambda removed: self.of_model(pruned_copy(structure, removed).model, example_inputs)


@register_resource("macs")
def macs(context: MetricContext) -> CountMetric:
    """Multiply-accumulates of one forward pass."""
    return CountMetric("macs")


@register_resource("flops")
def flops(context: MetricContext) -> CountMetric:
    """Floating-point operations of one forward pass (2 x MACs)."""
    return CountMetric("flops")


@register_resource("params", "weights")
def params(context: MetricContext) -> CountMetric:
    """Parameter elements."""
    return CountMetric("params")
