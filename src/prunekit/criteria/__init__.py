"""Channel importance criteria, by name: l1, l2, mean_abs, max_abs, threshold_count, bn_scale, taylor, fpgm, random, neuron.

A new criterion is one decorated function::

    @register_criterion("my_score")
    def my_score(slices, ctx):
        return mean_over(filters(slices), lambda w: w.abs().sum(1), ctx)
"""

from prunekit.criteria import magnitude  # noqa: F401  (registers the criteria)
from prunekit.criteria.base import (
    CRITERIA, CriterionContext, combine, filters, get_criterion, list_criteria, mean_over, needs_gradients,
    per_channel, register_criterion, score_group,
)

__all__ = [
    "CRITERIA", "CriterionContext", "combine", "filters", "get_criterion", "list_criteria", "mean_over",
    "needs_gradients", "per_channel", "register_criterion", "score_group",
]
