"""Channel importance criteria, by name: l1, l2, mean_abs, max_abs, threshold_count, bn_scale, taylor, fpgm, random, neuron,
conv_similarity, bn_similarity, and the OneFlow platform's names (bn, conv_avg, conv_all, conv_max, conv_threshold).

A new criterion is one decorated function::

    @register_criterion("my_score")
    def my_score(slices, ctx):
        return mean_over(filters(slices), lambda w: w.abs().sum(1), ctx)
"""

from prunekit.criteria import magnitude, oneflow, similarity, tinynn  # noqa: F401  (registers the criteria)
from prunekit.criteria.base import (
    CRITERIA, CriterionContext, alias_criterion, combine, filters, get_criterion, list_criteria, mean_over,
    needs_gradients, per_channel, register_criterion, score_group,
)

__all__ = [
    "CRITERIA", "CriterionContext", "alias_criterion", "combine", "filters", "get_criterion", "list_criteria",
    "mean_over", "needs_gradients", "per_channel", "register_criterion", "score_group",
]
