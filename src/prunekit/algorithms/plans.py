"""Keeping a pruned model's metadata: how to build its original, its input shape, and the composed plan."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io import attach_input_dtype, attach_input_shape, attach_plan, plan_of
from prunekit.models import attach_spec, spec_of
from prunekit.structure import GroupPlan, ModelStructure, PruningPlan


def compose_plans(earlier: dict | None, later: dict) -> dict:
    """The plan of pruning by ``earlier`` then by ``later``, relative to the original model.

    ``later`` was recorded on the earlier result, so its group widths and kept indices number
    the channels that ``earlier`` kept.
    """
    if not earlier:
        return later
    first, second = PruningPlan.from_dict(earlier), PruningPlan.from_dict(later)
    groups = dict(first.groups)
    for name, g in second.groups.items():
        before = first.groups.get(name)
        if before is None:
            groups[name] = g
        else:
            groups[name] = GroupPlan(before.original, [before.kept[i] for i in g.kept])
    # a layer one pruning excluded may be pruned by the other: only what both kept whole stays excluded (excluding
    # only takes groups away, so every group either plan pruned is one of the original's under the intersection)
    exclude = tuple(e for e in first.exclude if e in second.exclude)
    return PruningPlan(groups, exclude, second.round_to, first.attention).to_dict()


def one_input(example_inputs: Any) -> torch.Tensor:
    """The example batch as one tensor (a tuple or list of one tensor is unpacked): a checkpoint records one input
    shape, so a model of several inputs is refused here, before any work, in one line."""
    if isinstance(example_inputs, (tuple, list)) and len(example_inputs) == 1:
        example_inputs = example_inputs[0]
    if not torch.is_tensor(example_inputs) or example_inputs.dim() < 1:
        several = isinstance(example_inputs, (tuple, list))
        kind = f"{type(example_inputs).__name__} of {len(example_inputs)}" if several else type(example_inputs).__name__
        raise PrunekitError(f"example_inputs must be one tensor, a batch of inputs (N, C, H, W or N, L); got {kind}")
    return example_inputs


def carry_metadata(original: nn.Module, pruned: nn.Module, structure: ModelStructure, example_inputs) -> nn.Module:
    """Record on ``pruned`` the original's spec, the input shape and the plan relative to the original model."""
    spec = spec_of(original)
    if spec is not None:
        attach_spec(pruned, spec)
    attach_input_shape(pruned, tuple(example_inputs.shape[1:]))
    if torch.is_tensor(example_inputs) and example_inputs.dtype != torch.float32:  # token ids, uint8 images...
        attach_input_dtype(pruned, example_inputs.dtype)
    attach_plan(pruned, compose_plans(plan_of(original), structure.plan.to_dict()))
    return pruned
