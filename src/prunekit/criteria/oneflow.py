"""The OneFlow channel-pruning platform's criterion names (its ``--prune_method`` values), so that its
users' commands translate one to one.

What each computes in the platform's ``util/prune_algorithm.py`` (per output filter of a conv
layer, or per channel of a BN layer), and its prunekit equivalent:

* ``bn``: the BN scale gamma, one threshold over all layers -> ``bn_scale`` with ``--scope global``
* ``conv_avg``: mean |w| of the filter, global threshold -> ``mean_abs`` with ``--scope global``
* ``conv_all``: sum of |w| of the filter, global threshold -> ``l1`` with ``--scope global``
* ``conv_max``: largest |w| of the filter, global threshold -> ``max_abs`` with ``--scope global``
* ``random``: random filters, the same share of every layer -> ``random`` (``--scope local``)
* ``conv_threshold``: count of weights above a fixed 0.06 per filter, the same share of every
  layer -> ``conv_threshold`` below (``--scope local``)
* ``conv_similarity`` / ``bn_similarity``: greedy removal of near-duplicate filters / BN scales,
  per layer -> the criteria of the same names (``prunekit.criteria.similarity``)

The platform ranks ``bn`` by signed gamma, prunekit by |gamma| (the same order for the positive
scales that sparsity training leaves). Its global threshold compares raw scores across layers;
prunekit's ``--scope global`` compares each group's scores divided by the group's mean, which
keeps one layer's scale from deciding for all.
"""

from __future__ import annotations

from dataclasses import replace

from prunekit.criteria.base import alias_criterion, register_criterion
from prunekit.criteria.magnitude import threshold_count

CONV_THRESHOLD = 0.06
"""The platform's fixed threshold (``threSet=0.06`` in its prune step)."""

for _alias, _target in (("bn", "bn_scale"), ("conv_avg", "mean_abs"), ("conv_all", "l1"), ("conv_max", "max_abs")):
    alias_criterion(_alias, _target)


@register_criterion("conv_threshold")
def conv_threshold(slices, ctx):
    """Number of weights with |w| above 0.06 per filter (``--threshold`` overrides it): ``threshold_count`` with
    the platform's fixed default instead of each layer's mean |w|.

    The platform's documentation describes this count of weights above the threshold, removing the
    filters with the fewest; its code counts the weights *below* it, which would remove the filters
    with the most large weights: prunekit follows the documented intent.
    """
    if ctx.threshold is None:
        ctx = replace(ctx, threshold=CONV_THRESHOLD)
    return threshold_count(slices, ctx)
