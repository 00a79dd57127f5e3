"""Resources of a model: MACs, FLOPs (2 x MACs), parameters (counted) and latency (measured), and the
registry of resources a budget can be set in."""

from prunekit.resources.counter import Resources, count, count_params, measure
from prunekit.resources.metric import (
    RESOURCES, MetricContext, ResourceMetric, list_resources, make_metric, register_resource,
)
from prunekit.resources import counts, latency  # noqa: F401,E402  (registers the resources)

__all__ = ["RESOURCES", "MetricContext", "ResourceMetric", "Resources", "count", "count_params", "list_resources",
           "make_metric", "measure", "register_resource"]
