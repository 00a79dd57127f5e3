"""Rounding a network's widths down to hardware-friendly multiples after the search (the "Pruning"
tool's ``resize_alf``)."""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from prunekit.algorithms.plans import carry_metadata
from prunekit.algorithms.selection import lowest
from prunekit.criteria import score_group
from prunekit.structure import analyze


def round_widths(model: nn.Module, example_inputs: torch.Tensor, multiple: int, exclude: Sequence[str] = (),
                 criterion: str = "l2", attention: str = "head_dims") -> nn.Module:
    """A copy of ``model`` whose every prunable group keeps a multiple of ``multiple`` channels (rounded
    down, at least ``multiple``), dropping the lowest-scoring channels; ``model`` itself when every
    width is already a multiple."""
    pruned = copy.deepcopy(model)
    structure = analyze(pruned, example_inputs, exclude=exclude, round_to=1, attention=attention)
    changed = False
    for g in structure.groups:
        keep = max(multiple, g.channels // multiple * multiple)
        remove = min(g.channels - keep, structure.removable(g.name))
        if remove <= 0:
            continue
        scores = score_group(structure, g.name, criterion)
        structure.prune(g.name, lowest(scores if scores is not None else torch.zeros(g.channels), remove))
        changed = True
    return carry_metadata(model, pruned, structure, example_inputs) if changed else model
