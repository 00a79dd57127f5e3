"""Zeroing a group's channels in place: the reference that exact pruning must reproduce."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch

if TYPE_CHECKING:  # only for the annotation: no import cycle with structure.py
    from prunekit.structure.structure import ModelStructure


def zero_channels(structure: "ModelStructure", name: str, indices: Iterable[int]) -> None:
    """Set these channels of a group to exactly zero at every producer, without removing them.

    Zeroes the output-side slices (conv/linear rows and biases, norm weights and biases, BatchNorm
    running means, bare parameters).  For an ``exact`` group the model then computes the same as
    after ``prune(name, indices)``: a check that the group's index mappings are right.
    """
    st = structure._state(name)
    want = torch.tensor(structure._indices(st, indices), dtype=torch.long)
    for sl in structure.slices(name):
        if sl.role != "out":
            continue
        rows = torch.isin(sl.channels, want)
        if not rows.any():
            continue
        pos = sl.index[rows].flatten()
        sl.param.data.index_fill_(sl.dim, pos, 0.0)
        if sl.layer_type.startswith("BatchNorm") and sl.param_name == "weight":
            bn = structure.model.get_submodule(sl.layer)
            if getattr(bn, "running_mean", None) is not None:
                bn.running_mean.index_fill_(0, pos, 0.0)
