"""The small public types of prunekit.structure: groups, members, slices and the error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from prunekit.errors import PrunekitError

Role = Literal["out", "in"]


class StructureError(PrunekitError):
    """A model, group name, index list or plan that prunekit.structure cannot work with."""


@dataclass(frozen=True)
class Member:
    """A layer whose channels a group changes.

    ``layer`` is the qualified name from ``model.named_modules()`` (for a bare ``nn.Parameter``
    outside any prunable layer, e.g. a ViT's ``class_token``, its name from
    ``model.named_parameters()``).  ``role`` is "out" when the group's channels are this layer's
    output channels (normalisation layers and depthwise convolutions, whose input and output
    channels are the same, count as "out"), "in" when they are its input channels.
    """

    layer: str
    role: Role


@dataclass(frozen=True, eq=False)  # holds tensors: compared by identity
class ChannelSlice:
    """Where a group's channels sit in one parameter, for importance criteria.

    Group channel ``channels[i]`` corresponds to the positions ``index[i, :]`` of ``param`` along
    ``dim``.  ``channels`` is ``arange(group.channels)`` except for a layer that sees only part of
    the group (after a split or chunk of the channels); ``index`` has ``m`` columns: 1 normally,
    the number of grouped-convolution groups or attention heads a channel spans, or ``H*W`` where
    a convolution's output is flattened into a Linear's input.
    """

    layer: str
    layer_type: str
    role: Role
    param_name: str
    param: nn.Parameter
    dim: int
    index: torch.Tensor  # LongTensor [k, m]
    channels: torch.Tensor  # LongTensor [k]


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that can only be removed together, across every layer they pass through.

    ``name`` is the qualified name of the group's root layer (the first layer, in definition order,
    whose output channels the group is).  ``channels`` counts the group's removable units now
    (usually single channels; a unit spans several layer channels where grouped convolutions,
    attention heads or a channel shuffle tie them) and ``original_channels`` before any pruning.
    ``round_to`` is the step, in these units, that keeps every member's width a multiple of the
    ``round_to`` given to :func:`analyze`.  ``exact`` is True when removing a channel gives the same
    output as zeroing it at its producers (False where a LayerNorm/GroupNorm normalises across
    the channels, attention uses them or a statistic over the channels is taken (CBAM's channel
    mean): pruning those is an approximation, as in any pruner).
    """

    name: str
    channels: int
    original_channels: int
    members: tuple[Member, ...]
    round_to: int
    exact: bool = True
