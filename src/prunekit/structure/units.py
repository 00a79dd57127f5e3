"""From graph walks to prunekit groups of removable units.

The dependency graph gives one walk per root layer: every (layer, side, position) that a root
channel reaches.  A
prunekit *unit* is a set of such root channels that must be removed together: channels that meet
at the same position of some layer, or that a constraint ties (the same position in every
group of a grouped convolution, every head of an attention layer, every piece of a chunk, every
block of a channel shuffle).  Walks that share a unit form one prunekit group.  A unit that
touches a blocked node, an excluded layer or a model output is kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from prunekit.structure.fallbacks import Checked
from prunekit.structure.tp_backend import Graph, Item

@dataclass
class Part:
    """One walk: its root layer, the root's pruning function and its surviving channels."""

    root: nn.Module
    name: str
    fn: Callable
    kept: list[int]  # original root channel numbers still present, in order
    items: list[Item] = field(default_factory=list)


@dataclass
class GroupState:
    """A prunekit group: parts (walks) and units (tuples of (part, original root channel))."""

    name: str
    parts: list[int]
    units: list[tuple[tuple[int, int], ...]]
    members: list[tuple[str, str]]
    exact: bool
    multiplicity: int  # layer channels per unit on the widest out-member
    reasons: list[str] = field(default_factory=list)  # why some channels are kept whole
    blocked: int = 0  # units kept whole for those reasons
    risky: bool = False  # passes through an operation whose sizes the model's code may hard-code


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def walk(dg: Graph, part: Part, positions: list[int]) -> tuple[list, list[Item]]:
    """The pruning steps for these root positions, and their items (node, side, positions, root positions)."""
    return dg.walk(part.root, part.fn, positions)


def root_modules(dg: Graph, model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Candidate roots in definition order: convolutions, linear layers and embeddings in the graph."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.Embedding)) and dg.node(m) is not None]


def build(dg: Graph, model: nn.Module, checked: Checked, order: dict) -> tuple[list[Part], list[GroupState]]:
    """Enumerate walks, tie their channels into units and form prunekit groups."""
    parts: list[Part] = []
    visited: set = set()
    for name, m in root_modules(dg, model):
        if m in visited:
            continue
        blocked = checked.blocked.get(dg.node(m))
        if blocked is not None and blocked[0] in ("all", "out") and blocked[1] == "model output":
            continue
        width = dg.out_channels(m)
        part = Part(m, name, dg.out_fn(m), list(range(width)))
        _, part.items = walk(dg, part, list(range(width)))
        for node, side, _, _ in part.items:
            if side == "out" and isinstance(dg.target(node), nn.Module):
                visited.add(dg.target(node))
        parts.append(part)

    offset = [0]
    for p in parts:
        offset.append(offset[-1] + len(p.kept))
    uf = _UnionFind(offset[-1])
    bad: dict[int, str] = {}
    occupied: dict = {}  # (node, side) -> {position: element}
    skip = checked.internal | checked.inert
    for pi, part in enumerate(parts):
        for node, side, idxs, roots in part.items:
            why = _blocked_reason(checked, node, side)
            for pos, r in zip(idxs, roots):
                e = offset[pi] + r
                if why is not None:
                    bad.setdefault(e, why)
                if node in skip:
                    continue
                slot = occupied.setdefault((node, side), {})
                if pos in slot:
                    uf.union(slot[pos], e)
                else:
                    slot[pos] = e
    for con in checked.constraints:
        slot = occupied.get((con.node, con.side), {})
        if not slot:
            continue
        for tup in con.tuples:
            elems = [slot.get(p) for p in tup]
            present = [e for e in elems if e is not None]
            if not present:
                continue
            if len(present) < len(elems):
                for e in present:
                    bad.setdefault(e, f"{_node_name(dg, con.node)}: its channels are tied to channels that cannot be pruned")
            for e in present[1:]:
                uf.union(present[0], e)

    classes: dict[int, list[int]] = {}
    for e in range(offset[-1]):
        classes.setdefault(uf.find(e), []).append(e)
    blocked_cls = {c: next((bad[e] for e in es if e in bad), None) for c, es in classes.items()}

    part_of = [pi for pi, p in enumerate(parts) for _ in p.kept]
    puf = _UnionFind(len(parts))
    for c, es in classes.items():
        if blocked_cls[c] is None:
            for e in es[1:]:
                puf.union(part_of[es[0]], part_of[e])

    by_group: dict[int, list[int]] = {}
    for c in sorted(classes):
        if blocked_cls[c] is None:
            by_group.setdefault(puf.find(part_of[c]), []).append(c)
    reasons: dict[int, list[str]] = {}
    counts: dict[int, int] = {}
    for c, why in blocked_cls.items():
        if why is not None and why not in ("model output", "excluded"):
            g = puf.find(part_of[c])
            lst = reasons.setdefault(g, [])
            counts[g] = counts.get(g, 0) + 1
            if why not in lst:
                lst.append(why)

    groups: list[GroupState] = []
    for g, cls in sorted(by_group.items()):
        units = [tuple((part_of[e], e - offset[part_of[e]]) for e in classes[c]) for c in cls]
        pids = sorted({p for u in units for p, _ in u})
        live = {offset[p] + r for u in units for p, r in u}
        members, exact, mult = _members(dg, parts, pids, offset, live, units, order)
        exact = exact and not any(node in checked.sinks and any(offset[p] + r in live for r in roots)
                                  for p in pids for node, _, _, roots in parts[p].items)
        risky = any(node in checked.risky and any(offset[p] + r in live for r in roots)
                    for p in pids for node, _, _, roots in parts[p].items)
        groups.append(GroupState(parts[pids[0]].name, pids, units, members, exact, mult,
                                 reasons.get(g, []), counts.get(g, 0), risky))
    # groups whose every channel is blocked still explain why, in the warnings
    for g, why in reasons.items():
        if g not in by_group:
            groups.append(GroupState(parts[g].name, [g], [], [], True, 1, why, counts[g]))
    return parts, groups


def _blocked_reason(checked: Checked, node, side: str) -> str | None:
    hit = checked.blocked.get(node)
    if hit is None:
        return None
    if hit[0] == "all" or hit[0] == side:
        return hit[1]
    return None


def _node_name(dg: Graph, node) -> str:
    name = dg.name(dg.target(node))
    return f"'{name}'" if name else str(dg.target(node))


NON_EXACT = (nn.LayerNorm, nn.GroupNorm, nn.MultiheadAttention)


def _members(dg, parts, pids, offset, live, units, order) -> tuple[list[tuple[str, str]], bool, int]:
    """Layers (and bare parameters) a group changes, whether it is exact, and its multiplicity."""
    found: dict[tuple[str, str], int] = {}
    exact, mult = True, 1
    first = set(units[0])
    for p in pids:
        for node, side, idxs, roots in parts[p].items:
            if not any(offset[p] + r in live for r in roots):
                continue
            target = dg.target(node)
            name = dg.name(target)
            if isinstance(target, nn.Parameter):
                if name:
                    found.setdefault((name, "out"), order.get(name, 10**9))
                continue
            if not name:
                continue
            found.setdefault((name, side), order.get(name, 10**9))
            if isinstance(target, NON_EXACT):
                exact = False
            if side == "out":
                mult = max(mult, sum((p, r) in first for r in roots))
    members = sorted(found, key=lambda k: (found[k], k[1] != "out"))
    return members, exact, mult
