"""Resources of a model: MACs, FLOPs (2 x MACs) and parameters."""

from prunekit.resources.counter import Resources, count_params, measure

__all__ = ["Resources", "count_params", "measure"]
