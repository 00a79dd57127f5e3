"""Channel structure of any PyTorch model: list, score, remove and replay prunable channel groups.

Built on a traced dependency graph (one backend module, ``tp_backend``, wraps the library that
traces it), with prunekit's own rules for every operation, attention layer and hard-coded size::

    s = analyze(model, torch.randn(1, 3, 32, 32))
    for g in s.groups:
        scores = my_criterion(s.slices(g.name))
    s.prune("layers.0.conv1", [3, 7])          # real, smaller tensors
    json.dumps(s.plan.to_dict())               # replay later with apply_plan
"""

from prunekit.structure.plan import GroupPlan, PruningPlan
from prunekit.structure.structure import ModelStructure, analyze, apply_plan, pruned_copy, zero_channels
from prunekit.structure.datatypes import ChannelGroup, ChannelSlice, Member, StructureError

__all__ = [
    "analyze",
    "apply_plan",
    "zero_channels",
    "pruned_copy",
    "ModelStructure",
    "ChannelGroup",
    "Member",
    "ChannelSlice",
    "PruningPlan",
    "GroupPlan",
    "StructureError",
]
