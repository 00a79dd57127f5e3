"""Redundancy criteria: a channel that nearly duplicates another is the one to remove.

``conv_similarity`` and ``bn_similarity`` are the OneFlow channel-pruning platform's two similarity
operators (its ``prune_method`` values of those names). Each repeatedly removes the channel whose
nearest remaining channel is closest (squared Euclidean distance), so that of two near-identical
channels one goes and the other, now distinct, stays: the kept set is the most mutually distinct
one. This follows the redundancy idea of Srinivas & Babu, "Data-free parameter pruning for deep
neural networks" (BMVC 2015) and Ayinde & Zurada, "Building efficient ConvNets using redundant
feature pruning" (2018), which remove a filter that is close to another.

It differs from ``fpgm`` (He et al., "Filter Pruning via Geometric Median for Deep Convolutional
Neural Network Acceleration", CVPR 2019): FPGM scores each filter once by its summed distance to
all others and removes the filters nearest the layer's geometric median, the "centre" of the
layer, on the signed weights. Of two near-identical filters far from that centre FPGM keeps both,
while the similarity criteria remove one of them; a filter near the centre but unlike any other
is FPGM's first to go and kept by the similarity criteria.

Scores are ranks of the greedy elimination order (the first channel removed scores 0), so removing
the k lowest-scored channels is exactly the greedy k-step removal. Between equally close channels
the one with the smaller norm goes first. Where a group spans several layers, a channel's features
are its values in all of them (so distances add up over the layers).

Deviations from the platform's code, which are fixes: its loop records positions among the
remaining channels as if they were the original indices (after the first removal it removes the
wrong channels, sometimes one twice) and removes ``floor(percent * n) + 1`` channels; here the
intended greedy order is computed exactly and the count is prunekit's (``--ratio`` / budget).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from prunekit.criteria.base import CriterionContext, filters, per_channel, register_criterion
from prunekit.structure import ChannelSlice


def group_features(slices: Sequence[ChannelSlice], ctx: CriterionContext,
                   transform: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor | None:
    """Each group channel's values over all ``slices``, side by side: [channels, total width].

    A channel a layer does not see (after a split of the group) is zero in that layer's columns."""
    blocks = []
    for s in slices:
        values = transform(per_channel(s)).cpu()
        block = torch.zeros(ctx.channels, values.shape[1])
        block[s.channels.cpu()] = values
        blocks.append(block)
    return torch.cat(blocks, 1) if blocks else None


def greedy_redundancy_order(features: torch.Tensor) -> torch.Tensor:
    """Scores from greedy nearest-neighbour elimination of the rows of ``features`` [n, d].

    Step t removes the remaining row whose nearest remaining row is closest (ties: smaller norm,
    then lower index) and scores it t; the last row left scores n - 1."""
    n = features.shape[0]
    scores = torch.full((n,), float(n - 1))
    if n < 2:
        return scores
    f = features.double()
    dist = torch.cdist(f, f).pow(2)  # float64: the matrix-product form is exact enough
    dist = (dist + dist.T) / 2  # exactly symmetric, so both rows of a pair see the same distance
    dist.fill_diagonal_(float("inf"))
    nearest, partner = dist.min(1)
    norms = f.norm(dim=1)
    alive = torch.ones(n, dtype=torch.bool)
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    for step in range(n - 1):
        masked = torch.where(alive, nearest, inf)
        tied = alive & (masked == masked.min())
        pick = int(torch.where(tied, norms, inf).argmin())
        scores[pick] = step
        alive[pick] = False
        dist[:, pick] = float("inf")
        stale = alive & (partner == pick)
        if bool(stale.any()):
            nearest[stale], partner[stale] = dist[stale].min(1)
    return scores


@register_criterion("conv_similarity")
def conv_similarity(slices, ctx):
    """Greedy removal of the filter closest to another filter, on |w| (the OneFlow platform's ``conv_similarity``)."""
    features = group_features(filters(slices), ctx, torch.abs)
    return None if features is None else greedy_redundancy_order(features)


@register_criterion("bn_similarity")
def bn_similarity(slices, ctx):
    """Greedy removal of the channel whose BatchNorm scale is closest to another's (the OneFlow platform's
    ``bn_similarity``); None for a group without BatchNorm."""
    bns = [s for s in slices if s.role == "out" and s.param_name == "weight" and s.layer_type.startswith("BatchNorm")]
    features = group_features(bns, ctx, lambda g: g.reshape(len(g), -1))
    return None if features is None else greedy_redundancy_order(features)
