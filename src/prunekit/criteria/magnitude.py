"""Weight-magnitude criteria on a group's producing filters (averaged over its member layers)."""

from __future__ import annotations

import torch

from prunekit.criteria.base import filters, mean_over, per_channel, register_criterion


@register_criterion("l1")
def l1(slices, ctx):
    """Sum of |w| per filter (the 'conv_all' operator; Li et al. 2017)."""
    return mean_over(filters(slices), lambda w: w.abs().sum(1), ctx)


@register_criterion("l2")
def l2(slices, ctx):
    """L2 norm of each filter."""
    return mean_over(filters(slices), lambda w: w.norm(dim=1), ctx)


@register_criterion("mean_abs")
def mean_abs(slices, ctx):
    """Mean of |w| per filter ('conv_avg')."""
    return mean_over(filters(slices), lambda w: w.abs().mean(1), ctx)


@register_criterion("max_abs")
def max_abs(slices, ctx):
    """Largest |w| per filter ('conv_max')."""
    return mean_over(filters(slices), lambda w: w.abs().amax(1), ctx)


@register_criterion("threshold_count")
def threshold_count(slices, ctx):
    """Number of weights with |w| above a threshold per filter ('conv_threshold').

    The threshold is ``ctx.threshold`` when given, else each layer's own mean |w| (so one
    default works for layers of any scale). Ties are broken by the filter's L1 norm.
    """
    def count(w: torch.Tensor) -> torch.Tensor:
        thr = ctx.threshold if ctx.threshold is not None else w.abs().mean()
        above = (w.abs() > thr).float().sum(1)
        return above + 1e-6 * w.abs().sum(1) / (w.abs().sum(1).max() + 1e-12)

    return mean_over(filters(slices), count, ctx)


@register_criterion("neuron")
def neuron(slices, ctx):
    """Mean |w| of each neuron's incoming and outgoing weights (fully connected nets; works on convs too)."""
    weighted = [s for s in slices if s.param_name == "weight" and s.layer_type in ("Linear", "Conv1d", "Conv2d", "Conv3d")]
    return mean_over(weighted, lambda w: w.abs().mean(1), ctx)


@register_criterion("bn_scale")
def bn_scale(slices, ctx):
    """|gamma| of the group's BatchNorm layers (network slimming, Liu et al. 2017); None without BN."""
    bns = [s for s in slices if s.role == "out" and s.param_name == "weight" and s.layer_type.startswith("BatchNorm")]
    return mean_over(bns, lambda g: g.abs().reshape(len(g), -1).sum(1), ctx)


@register_criterion("fpgm")
def fpgm(slices, ctx):
    """Filter similarity: summed distance of each filter to the others in its layer (He et al. 2019).

    Filters near the geometric median are the most replaceable, so they score lowest.
    """
    def spread(w: torch.Tensor) -> torch.Tensor:
        return torch.cdist(w[None], w[None])[0].sum(1)

    return mean_over(filters(slices), spread, ctx)


@register_criterion("random")
def random(slices, ctx):
    """Seeded random scores (the baseline every criterion should beat)."""
    gen = torch.Generator().manual_seed(ctx.seed + sum(map(ord, ctx.group)))
    return torch.rand(ctx.channels, generator=gen)


@register_criterion("taylor", needs_gradients=True)
def taylor(slices, ctx):
    """First-order Taylor importance (Molchanov et al. 2019): (sum over the group of w * dL/dw)^2 per channel.

    Needs gradients accumulated over a few batches (``prune(..., data=...)`` does that).
    """
    members = [s for s in slices if s.param.grad is not None and s.param_name in ("weight", "bias")]
    if not members:
        return None
    total = torch.zeros(ctx.channels)
    for s in members:
        total.index_add_(0, s.channels.cpu(), (per_channel(s) * per_channel(s, use_grad=True)).sum(1).cpu())
    return total.pow(2)
