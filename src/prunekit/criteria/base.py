"""The criterion registry and the helpers criteria share.

A criterion scores every channel of one group: higher means more important (kept longer).
It receives the group's :class:`~prunekit.structure.ChannelSlice` list (each member layer's
parameter, viewed per channel) and a :class:`CriterionContext`, and returns a 1-D tensor of
``channels`` scores, or ``None`` when it cannot score that group (e.g. ``bn_scale`` on a group
without BatchNorm): such a group is then left whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from prunekit.registry import Registry
from prunekit.structure import ChannelSlice, ModelStructure

Criterion = Callable[[Sequence[ChannelSlice], "CriterionContext"], Optional[torch.Tensor]]
CRITERIA: Registry[Criterion] = Registry("criterion")

WEIGHTED_LAYERS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear")
NORM_LAYERS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm", "InstanceNorm2d")


@dataclass
class CriterionContext:
    """Settings a criterion may use: a seed (``random``), a threshold (``threshold_count``), the group's name."""

    seed: int = 0
    threshold: float | None = None
    group: str = ""
    channels: int = 0
    """The group's width: the length of the score vector to return."""


def register_criterion(name: str, *, needs_gradients: bool = False) -> Callable[[Criterion], Criterion]:
    """Decorator: add a criterion under ``name``. ``needs_gradients``: it reads ``param.grad``
    (the caller runs a few batches of data through the model first)."""

    def add(fn: Criterion) -> Criterion:
        fn.needs_gradients = needs_gradients  # type: ignore[attr-defined]
        return CRITERIA.register(name)(fn)

    return add


def alias_criterion(alias: str, target: str) -> None:
    """Register ``alias`` as another name of the criterion ``target`` (e.g. another tool's name for it)."""
    CRITERIA.register(alias)(get_criterion(target))


def get_criterion(name: str) -> Criterion:
    """The criterion registered as ``name`` (an unknown name lists the valid ones)."""
    return CRITERIA.get(name)


def list_criteria() -> list[str]:
    """Registered criterion names."""
    return CRITERIA.names()


def needs_gradients(criterion: str | Criterion) -> bool:
    """Whether the criterion reads gradients (Taylor)."""
    fn = get_criterion(criterion) if isinstance(criterion, str) else criterion
    return bool(getattr(fn, "needs_gradients", False))


def score_group(structure: ModelStructure, group: str, criterion: str, *, seed: int = 0,
                threshold: float | None = None) -> torch.Tensor | None:
    """``criterion``'s scores (detached, float, CPU) for the channels of ``group``, or None if it cannot score it."""
    g = structure.group(group)
    ctx = CriterionContext(seed=seed, threshold=threshold, group=group, channels=g.channels)
    scores = get_criterion(criterion)(structure.slices(group), ctx)
    return None if scores is None else scores.detach().float().cpu()


def per_channel(s: ChannelSlice, use_grad: bool = False) -> torch.Tensor:
    """The slice's values (or gradients) as [len(s.channels), everything else]: row i is group channel s.channels[i]."""
    t = s.param.grad if use_grad else s.param
    if t is None:
        raise ValueError(f"{s.layer}.{s.param_name} has no gradient")
    t = t.detach().movedim(s.dim, 0)
    idx = s.index.to(t.device)
    return t[idx.reshape(-1)].reshape(idx.shape[0], -1).float()


def filters(slices: Sequence[ChannelSlice]) -> list[ChannelSlice]:
    """The producing filters of the group: output-role weights of conv / linear layers."""
    return [s for s in slices if s.role == "out" and s.param_name == "weight" and s.layer_type in WEIGHTED_LAYERS]


def combine(slices: Sequence[ChannelSlice], values: Sequence[torch.Tensor], channels: int) -> torch.Tensor | None:
    """Average per-slice values over the slices that see each channel (a layer may see only part of a group).

    Channels no slice sees get the lowest score seen (they carry no weight of their own)."""
    if not slices:
        return None
    total = torch.zeros(channels)
    count = torch.zeros(channels)
    for s, v in zip(slices, values):
        idx = s.channels.cpu()
        total.index_add_(0, idx, v.float().cpu())
        count.index_add_(0, idx, torch.ones(len(idx)))
    seen = count > 0
    out = torch.full((channels,), float(total[seen].div(count[seen]).min()) if seen.any() else 0.0)
    out[seen] = total[seen] / count[seen]
    return out


def mean_over(slices: Sequence[ChannelSlice], stat: Callable[[torch.Tensor], torch.Tensor], ctx: "CriterionContext",
              use_grad: bool = False) -> torch.Tensor | None:
    """A per-channel statistic of each slice, averaged over the slices (None when there are none)."""
    return combine(slices, [stat(per_channel(s, use_grad)) for s in slices], ctx.channels)
