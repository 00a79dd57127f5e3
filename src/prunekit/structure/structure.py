"""ModelStructure: list, score, remove and record the prunable channel groups of a model."""

from __future__ import annotations

import copy
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from prunekit.structure.fallbacks import Checked, check
from prunekit.structure import attention as _attention
from prunekit.structure import counts
from prunekit.structure.graph import trace
from prunekit.structure.plan import GroupPlan, PruningPlan
from prunekit.structure.sizes import fixers_for
from prunekit.structure.slices import channel_slices
from prunekit.structure.datatypes import ChannelGroup, ChannelSlice, Member, StructureError
from prunekit.structure.tp_backend import Graph
from prunekit.structure.units import GroupState, Part, build, walk
from prunekit.structure.validate import validate as check_on_copy
from prunekit.structure.zeroing import zero_channels  # noqa: F401 (public here too)


class ModelStructure:
    """The prunable channel groups of a model, and the operations on them (see :func:`analyze`).

    It works in place on ``model``.  ``copy.deepcopy`` of a structure copies the model with it,
    which is much cheaper than analysing a copy again.
    """

    def __init__(self, model: nn.Module, dg: Graph, checked: Checked, parts: list[Part],
                 states: list[GroupState], round_to: int, exclude: tuple[str, ...],
                 attention: str = _attention.DEFAULT_MODE) -> None:
        self.model = model
        self.round_to = round_to
        self.exclude = exclude
        self.attention = attention
        self._sites = checked.sites
        self._fixers = fixers_for(model)
        self.warnings: list[str] = []
        self._dg, self._checked, self._parts = dg, checked, parts
        self._states = {st.name: st for st in states if st.units}
        self._names = [st.name for st in states if st.units]
        self._orig = {n: list(range(len(st.units))) for n, st in self._states.items()}
        self._original = {n: len(st.units) for n, st in self._states.items()}
        self._slice_cache: dict[str, list[ChannelSlice]] = {}
        self._group_cache: list[ChannelGroup] | None = None
        for st in states:
            if st.reasons:
                how = "all" if not st.units else f"{st.blocked} of"
                self.warnings.append(
                    f"group '{st.name}': {how} its channels are kept whole: " + "; ".join(st.reasons[:3])
                )

    # ------------------------------------------------------------------ reading
    @property
    def groups(self) -> list[ChannelGroup]:
        """Every group with channels that can be pruned, in definition order of their root layers."""
        if self._group_cache is None:
            self._group_cache = [self._group(n) for n in self._names]
        return list(self._group_cache)

    def group(self, name: str) -> ChannelGroup:
        """The group whose root layer is ``name``; StructureError listing valid names otherwise."""
        self._state(name)
        return next(g for g in self.groups if g.name == name)

    def _state(self, name: str) -> GroupState:
        st = self._states.get(name)
        if st is None:
            valid = ", ".join(self._names[:40]) + (" ..." if len(self._names) > 40 else "")
            raise StructureError(f"no prunable channel group named {name!r}; valid names: {valid or '(none)'}")
        return st

    def _step(self, st: GroupState) -> int:
        return counts.unit_step(self.round_to, st.multiplicity)

    def _group(self, name: str) -> ChannelGroup:
        st = self._states[name]
        members = tuple(Member(layer, role) for layer, role in st.members)  # type: ignore[arg-type]
        return ChannelGroup(name, len(st.units), self._original[name], members, self._step(st), st.exact)

    def removable(self, name: str) -> int:
        """How many channels may still be removed from group ``name`` (at most, in one or more steps).

        At least one ``round_to`` step of channels is kept, and every prune must leave a multiple
        of the step (a group whose width is not a multiple drops to one at its first prune).
        """
        st = self._state(name)
        return counts.most_removable(len(st.units), self._step(st))

    def removals(self, name: str) -> list[int]:
        """Every count of channels :meth:`prune` accepts for group ``name`` now, ascending, from 0."""
        st = self._state(name)
        return counts.legal_removals(len(st.units), self._step(st))

    def round_removal(self, name: str, wanted: int) -> int:
        """The smallest count >= ``wanted`` that :meth:`prune` accepts (capped at :meth:`removable`)."""
        st = self._state(name)
        return counts.round_up(len(st.units), self._step(st), wanted)

    def allowed_removal(self, name: str, wanted: int) -> int:
        """The largest count <= ``wanted`` that :meth:`prune` accepts (0 if none)."""
        st = self._state(name)
        return counts.round_down(len(st.units), self._step(st), wanted)

    def slices(self, name: str) -> list[ChannelSlice]:
        """Where the group's channels sit in every parameter it touches (see ChannelSlice)."""
        st = self._state(name)
        if name not in self._slice_cache:
            pos = {u_elem: i for i, unit in enumerate(st.units) for u_elem in unit}
            walks = []
            for p in st.parts:
                part = self._parts[p]
                _, items = walk(self._dg, part, list(range(len(part.kept))))
                walks.append((p, items))
            kept = {p: self._parts[p].kept for p in st.parts}

            def unit_of(p: int, r: int) -> int | None:
                return pos.get((p, kept[p][r])) if r < len(kept[p]) else None

            self._slice_cache[name] = channel_slices(self._dg, walks, unit_of)
        return list(self._slice_cache[name])

    @property
    def plan(self) -> PruningPlan:
        """Everything pruned since the original model (composed with the plan given to analyze)."""
        groups = {
            n: GroupPlan(self._original[n], sorted(self._orig[n]))
            for n in self._names
            if len(self._orig[n]) < self._original[n]
        }
        return PruningPlan(groups, self.exclude, self.round_to, self.attention)

    # ------------------------------------------------------------------ pruning
    def prune(self, name: str, indices: Iterable[int]) -> None:
        """Physically remove these channels (positions 0..channels-1 now) of group ``name``.

        Every member layer gets smaller tensors; ``groups``, ``slices`` and ``plan`` follow.
        Raises StructureError for unknown names, bad indices or a count that breaks ``round_to``.
        """
        st = self._state(name)
        idx = self._indices(st, indices)
        if not idx:
            return
        left, step = len(st.units) - len(idx), self._step(st)
        if not counts.is_legal(len(st.units), step, len(idx)):
            raise StructureError(
                f"group {name!r}: removing {len(idx)} of {len(st.units)} channels leaves {left}; it must "
                f"keep a multiple of {step} channels and at least {step} (round_to={self.round_to}); "
                f"at most {self.removable(name)} can be removed"
            )
        self._remove(st, idx)

    @staticmethod
    def _indices(st: GroupState, indices: Iterable[int]) -> list[int]:
        if isinstance(indices, torch.Tensor):
            indices = indices.flatten().tolist()
        try:
            idx = sorted({int(i) for i in indices})
        except (TypeError, ValueError):
            raise StructureError(f"group {st.name!r}: channel indices must be integers") from None
        if idx and (idx[0] < 0 or idx[-1] >= len(st.units)):
            raise StructureError(
                f"group {st.name!r} has {len(st.units)} channels; indices must be in 0..{len(st.units) - 1}"
            )
        return idx

    def _remove(self, st: GroupState, idx: Sequence[int]) -> None:
        by_part: dict[int, list[int]] = {}
        for i in idx:
            for p, r in st.units[i]:
                by_part.setdefault(p, []).append(r)
        merged: dict[tuple, tuple[Any, set]] = {}
        for p, rs in by_part.items():
            part = self._parts[p]
            where = {r: k for k, r in enumerate(part.kept)}
            steps, _ = walk(self._dg, part, sorted(where[r] for r in rs))
            for dep, pos in steps:
                merged.setdefault(self._dg.step_key(dep), (dep, set()))[1].update(pos)
        self._check_positions(merged)
        _attention.before_prune(self.attention, [(self._dg.target(node), len(pos)) for (node, _), (_, pos) in merged.items()])
        with torch.no_grad():
            self._dg.prune([(dep, sorted(pos)) for dep, pos in merged.values()])
        self._refresh_sizes()
        for (node, _), (_, pos) in merged.items():
            state = self._checked.shuffles.get(node)
            if state is not None:
                state.width -= len(pos)
        for p, rs in by_part.items():
            gone = set(rs)
            self._parts[p].kept = [r for r in self._parts[p].kept if r not in gone]
        drop = set(idx)
        st.units = [u for i, u in enumerate(st.units) if i not in drop]
        self._orig[st.name] = [o for i, o in enumerate(self._orig[st.name]) if i not in drop]
        self._slice_cache.clear()
        self._group_cache = None

    def _refresh_sizes(self) -> None:
        """Rewrite the sizes layers keep as attributes (head counts, ViT's hidden_dim) from the weights."""
        for site in self._sites:
            site.refresh()
        for module, fix in self._fixers:
            fix(module)

    def _check_positions(self, merged: dict) -> None:
        """Refuse (before changing anything) positions beyond a layer's width: a mapping bug."""
        for (node, _), (dep, pos) in merged.items():
            top = max(pos, default=-1)
            width = self._dg.width(dep, top)
            if width is not None and top >= width:
                name = self._dg.name(self._dg.target(node)) or type(self._dg.target(node)).__name__
                raise StructureError(
                    f"internal error: pruning would remove position {top} of {name}, which has "
                    f"{width}; the model was not changed"
                )

    def _adopt(self, plan: PruningPlan) -> None:
        """Start from a model that ``plan`` already pruned (its units are the plan's kept ones)."""
        for name, gp in plan.groups.items():
            st = self._states.get(name)
            if st is None or len(st.units) != len(gp.kept):
                have = "no such group" if st is None else f"{len(st.units)} channels"
                raise StructureError(
                    f"the plan does not match this model: group {name!r} keeps {len(gp.kept)} channels "
                    f"in the plan, the model has {have}"
                )
            self._orig[name] = list(gp.kept)
            self._original[name] = gp.original
        self._group_cache = None

    def _drop(self, name: str, why: str) -> None:
        """Stop offering group ``name`` (its channels stay whole) and say why in the warnings."""
        self._states.pop(name)
        self._names.remove(name)
        self._orig.pop(name)
        self._original.pop(name)
        self._group_cache = None
        self.warnings.append(f"group '{name}': all its channels are kept whole: {why}")

    def __deepcopy__(self, memo: dict) -> "ModelStructure":
        self._dg.seed_deepcopy(memo)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k == "_slice_cache":
                v = {}
            elif k == "_group_cache":
                v = None
            else:
                v = copy.deepcopy(v, memo)
            setattr(new, k, v)
        return new

    def __repr__(self) -> str:
        return f"ModelStructure({len(self._names)} groups, {sum(len(s.units) for s in self._states.values())} channels)"


def _attention_mode(mode: str, plan: PruningPlan | None) -> str:
    _attention.check_mode(mode)
    if plan is not None and plan.groups and plan.attention != mode:
        raise StructureError(f"the plan was made with attention={plan.attention!r}; analyze with the same setting")
    return mode


def _check_exclude(model: nn.Module, exclude: Iterable[str]) -> tuple[str, ...]:
    names = dict(model.named_modules())
    out = tuple(str(e) for e in exclude)
    for e in out:
        if e not in names:
            close = [n for n in names if n and (n.startswith(e) or e in n)][:10]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise StructureError(f"exclude: the model has no layer named {e!r}{hint}")
    return out


def analyze(model: nn.Module, example_inputs: Any, *, exclude: Iterable[str] = (), round_to: int = 1,
            plan: PruningPlan | None = None, validate: bool = True,
            attention: str = _attention.DEFAULT_MODE) -> ModelStructure:
    """Find the prunable channel groups of ``model`` (works in place on it).

    ``example_inputs``: a tensor, a tuple of positional arguments or a dict of keyword arguments
    the model accepts (small is fine: one image of the size the model expects).
    ``exclude``: layer names (and everything inside them) to keep whole.
    ``round_to``: every group keeps a multiple of this many channels, and at least that many.
    ``plan``: the plan that produced this (already pruned) model from the original, so that
    :attr:`ModelStructure.plan` keeps counting from the original.
    ``validate``: prune groups that pass through reshapes or splits by one step on a copy first
    (a model's code may hard-code sizes there); groups that break are kept whole, with a warning.
    ``attention``: how attention layers are pruned: ``"head_dims"`` (one dimension in every head:
    ``head_dim`` shrinks), ``"heads"`` (whole heads: ``num_heads`` shrinks) or ``"none"`` (their
    widths are kept whole); see docs/structure.md for the layer classes prunekit knows.
    """
    mode = _attention_mode(attention, plan)
    if not isinstance(round_to, int) or round_to < 1:
        raise StructureError(f"round_to must be a positive integer, got {round_to!r}")
    if not isinstance(model, nn.Module):
        raise StructureError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if torch.is_inference_mode_enabled():
        raise StructureError("analyze traces the model with autograd: call it outside torch.inference_mode()")
    excluded = _check_exclude(model, exclude)
    modes = {m: m.training for m in model.modules()}
    grads = {p: p.requires_grad for p in model.parameters()}
    try:
        for p in grads:
            p.requires_grad_(True)
        sites = _attention.find_sites(model, mode)
        tr = trace(model, example_inputs, watch=tuple(site.module for site in sites))
    finally:
        for p, g in grads.items():
            p.requires_grad_(g)
        for m, t in modes.items():
            m.training = t
    checked = check(tr, sites, mode)
    dg = tr.dg
    for name in excluded:
        for m in model.get_submodule(name).modules():
            node = dg.node(m)
            if node is not None:
                checked.blocked[node] = ("all", "excluded")
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    for i, (n, _) in enumerate(model.named_parameters()):
        order.setdefault(n, len(order) + i)
    parts, states = build(dg, model, checked, order)
    for part in parts:
        part.items = []  # only needed while building; slices walk the graph again
    dg.free_autograd()
    del tr
    states.sort(key=lambda st: order.get(st.name, 0))
    s = ModelStructure(model, dg, checked, parts, states, round_to, excluded, mode)
    if validate:
        check_on_copy(s, example_inputs)
    if plan is not None:
        s._adopt(plan)
    return s


def apply_plan(model: nn.Module, example_inputs: Any, plan: PruningPlan, *, round_to: int | None = None) -> ModelStructure:
    """Prune a freshly built original ``model`` in place to exactly ``plan``; returns its structure.

    Loading the pruned model's state_dict into the result then reproduces it exactly.
    """
    s = analyze(model, example_inputs, exclude=plan.exclude, round_to=round_to or plan.round_to, validate=False,
                attention=plan.attention)
    for name, gp in plan.groups.items():
        st = s._states.get(name)
        if st is None:
            raise StructureError(
                f"the plan names group {name!r}, which this model does not have "
                f"(is it the same architecture? groups: {', '.join(s._names[:20])})"
            )
        if len(st.units) != gp.original or s._original[name] != gp.original:
            raise StructureError(
                f"the plan does not match this model: group {name!r} has {len(st.units)} channels here, "
                f"{gp.original} in the plan's original (apply a plan to a freshly built original model)"
            )
        if not gp.kept:
            raise StructureError(f"the plan keeps no channel of group {name!r}")
        removed = sorted(set(range(gp.original)) - set(gp.kept))
        if removed:
            s._remove(st, removed)
    return s


@torch.no_grad()
def pruned_copy(structure: ModelStructure, removed: dict[str, int]) -> ModelStructure:
    """A copy of ``structure`` (its model included) without the first ``removed[g]`` channels of each group ``g``.

    Which channels go does not change a network's size or speed, so resource and latency
    what-ifs price a pruned network this way (counts must be valid for each group's step).
    """
    copied = copy.deepcopy(structure)
    for name, k in removed.items():
        if k:
            copied.prune(name, list(range(k)))
    return copied
