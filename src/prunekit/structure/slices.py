"""Where a group's channels sit in each parameter (ChannelSlice), for importance criteria."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from prunekit.structure.datatypes import ChannelSlice
from prunekit.structure.tp_backend import Graph, Item, is_depthwise

Position = tuple[str, int, int, str]  # (parameter name, dim, index, role)


def positions(module: nn.Module, side: str, pos: int) -> list[Position]:
    """Parameter positions that channel ``pos`` of ``module`` (on ``side``) occupies."""
    if isinstance(module, nn.modules.conv._ConvNd):
        if is_depthwise(module):
            return [("weight", 0, pos, "out"), ("bias", 0, pos, "out")]
        if not module.transposed:
            if side == "out":
                return [("weight", 0, pos, "out"), ("bias", 0, pos, "out")]
            return [("weight", 1, pos % (module.in_channels // module.groups), "in")]
        if side == "out":
            return [("weight", 1, pos, "out"), ("bias", 0, pos, "out")]
        return [("weight", 0, pos, "in")]
    if isinstance(module, nn.Linear):
        if side == "out":
            return [("weight", 0, pos, "out"), ("bias", 0, pos, "out")]
        return [("weight", 1, pos, "in")]
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                           nn.GroupNorm, nn.LayerNorm)):
        return [("weight", 0, pos, "out"), ("bias", 0, pos, "out")]
    if isinstance(module, nn.PReLU):
        return [("weight", 0, pos, "out")] if module.num_parameters > 1 else []
    if isinstance(module, nn.Embedding):
        return [("weight", 1, pos, "out")]
    if isinstance(module, nn.MultiheadAttention):
        e = module.embed_dim
        rows = [("in_proj_weight", 0, pos + k * e, "out") for k in range(3)]
        rows += [("in_proj_bias", 0, pos + k * e, "out") for k in range(3)]
        return rows + [
            ("in_proj_weight", 1, pos, "in"), ("out_proj.weight", 0, pos, "out"),
            ("out_proj.weight", 1, pos, "in"), ("out_proj.bias", 0, pos, "out"),
            ("bias_k", 2, pos, "out"), ("bias_v", 2, pos, "out"),
        ]
    return []


def _param(owner: nn.Module, dotted: str) -> nn.Parameter | None:
    obj = owner
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, nn.Parameter) else None


def channel_slices(
    dg: Graph,
    walks: list[tuple[int, list[Item]]],
    unit_of: Callable[[int, int], int | None],
) -> list[ChannelSlice]:
    """Slices for the items of graph walks ``(part, items)``; ``unit_of(part, root position)``."""
    buckets: dict[tuple, dict[int, list[int]]] = {}
    params: dict[tuple, nn.Parameter] = {}
    for part, items in walks:
        for node, side, idxs, roots in items:
            target = dg.target(node)
            name = dg.name(target)
            if isinstance(target, nn.Parameter):
                if name is None:
                    continue
                dim = dg.param_dim(node)
                short = name.rsplit(".", 1)[-1]
                entries = [(name, "Parameter", target, [(short, dim, i, "out") for i in idxs])]
            else:
                if not name:
                    continue
                entries = [(name, type(target).__name__, target, None)]
            for layer, ltype, owner, fixed in entries:
                for k, (pos, r) in enumerate(zip(idxs, roots)):
                    u = unit_of(part, r)
                    if u is None:
                        continue
                    spots = [fixed[k]] if fixed is not None else positions(owner, side, pos)
                    for pname, dim, p, role in spots:
                        param = owner if fixed is not None else _param(owner, pname)
                        if param is None:
                            continue
                        key = (layer, ltype, role, pname, dim)
                        params[key] = param
                        cell = buckets.setdefault(key, {}).setdefault(u, [])
                        if p not in cell:
                            cell.append(p)
    out: list[ChannelSlice] = []
    for key, cells in buckets.items():
        layer, ltype, role, pname, dim = key
        by_m: dict[int, list[int]] = {}
        for u in sorted(cells):
            by_m.setdefault(len(cells[u]), []).append(u)
        for m, units in sorted(by_m.items()):
            index = torch.tensor([sorted(cells[u]) for u in units], dtype=torch.long).view(len(units), m)
            out.append(ChannelSlice(layer, ltype, role, pname, params[key], dim, index,
                                    torch.tensor(units, dtype=torch.long)))
    return out
