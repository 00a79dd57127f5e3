"""The layers a latency table times, and how their shapes follow the widths of the channel groups.

A *site* is one call of a leaf module (conv, linear, norm, activation, pooling, ...) in a forward
pass, with the shapes it saw. Its *signature* (layer kind, the settings that set its cost, the
input shape, batch included) is what a latency table is keyed by, so one table serves every
model whose layers share signatures.

To predict a network that is not built yet (NetAdapt asks "what if group g lost k channels?"),
:func:`probe_sites` learns once how every site's input and output shapes depend on each group's
width: it removes one step of channels from each group on a copy and sees which dimensions
shrink and by how much. Any other widths then give every site's shapes by arithmetic.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from prunekit.structure import ModelStructure, pruned_copy

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

Terms = dict[int, list[tuple[str, float]]]
"""Dimension -> [(group, size change per channel removed from that group)]."""


@dataclass
class Site:
    """One leaf-module call of a forward pass, and how its shapes depend on group widths."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_terms: Terms = field(default_factory=dict)
    output_terms: Terms = field(default_factory=dict)

    @property
    def groups(self) -> set[str]:
        """The groups whose width changes this site's shapes."""
        return {g for terms in (self.input_terms, self.output_terms) for ts in terms.values() for g, _ in ts}

    def shapes(self, removed: dict[str, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Input and output shapes after removing ``removed[g]`` channels from each group."""
        return _apply(self.input_shape, self.input_terms, removed), _apply(self.output_shape, self.output_terms, removed)

    def _touched_by(self, removed: dict[str, int] | None) -> bool:
        return bool(removed) and bool(self.groups & removed.keys())

    def signature(self, removed: dict[str, int] | None = None) -> str | None:
        """The table key of this site after the removals (None: a layer kind that cannot be resized)."""
        if not self._touched_by(removed):
            return signature_of(self.module, self.input_shape, self.output_shape)
        x, y = self.shapes(removed)
        if resizable(self.module):
            return signature_of(self.module, x, y)
        return None

    def layer(self, removed: dict[str, int] | None = None) -> tuple[nn.Module, tuple[int, ...]] | None:
        """A module with this site's settings after the removals, and its input shape (None: not resizable)."""
        if not self._touched_by(removed):
            return self.module, self.input_shape
        x, y = self.shapes(removed)
        module = resize(self.module, x, y)
        return (module, x) if module is not None else None


def _apply(shape: tuple[int, ...], terms: Terms, removed: dict[str, int]) -> tuple[int, ...]:
    out = list(shape)
    for dim, ts in terms.items():
        out[dim] = int(round(shape[dim] - sum(per * removed.get(g, 0) for g, per in ts)))
    return tuple(out)


def _conv_settings(m: nn.Module, cin: int, cout: int) -> dict[str, Any]:
    depthwise = m.groups > 1 and m.groups == m.in_channels
    return dict(in_channels=cin, out_channels=cout, kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=cin if depthwise else m.groups, bias=m.bias is not None,
                padding_mode=m.padding_mode)


def _stateless(m: nn.Module) -> bool:
    return next(iter(m.parameters(recurse=False)), None) is None and next(iter(m.buffers(recurse=False)), None) is None


def resizable(m: nn.Module) -> bool:
    """Whether a copy of ``m`` can be built for other channel counts (conv, linear, batch norm, stateless layers)."""
    return isinstance(m, (*_CONV, nn.Linear, *_NORM)) or _stateless(m)


def signature_of(m: nn.Module, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> str:
    """``Kind(settings)@input shape``: everything that sets the layer's cost (weights' values do not)."""
    shape = "x".join(map(str, input_shape))
    if isinstance(m, _CONV):
        s = _conv_settings(m, input_shape[1], output_shape[1])
        settings = (f"{s['in_channels']},{s['out_channels']},k={s['kernel_size']},s={s['stride']},p={s['padding']},"
                    f"d={s['dilation']},g={s['groups']},bias={s['bias']}")
        if s["padding_mode"] != "zeros":
            settings += f",{s['padding_mode']}"
    elif isinstance(m, nn.Linear):
        settings = f"{input_shape[-1]},{output_shape[-1]},bias={m.bias is not None}"
    elif isinstance(m, _NORM):
        settings = f"{input_shape[1]},affine={m.affine},stats={m.track_running_stats}"
    else:
        settings = m.extra_repr()
    return f"{type(m).__name__}({settings})@{shape}".replace(" ", "")


def resize(m: nn.Module, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> nn.Module | None:
    """A fresh module like ``m`` for these shapes (None when ``m``'s kind cannot be resized)."""
    if isinstance(m, _CONV):
        s = _conv_settings(m, input_shape[1], output_shape[1])
        if s["in_channels"] % s["groups"] or s["out_channels"] % s["groups"]:
            return None
        return type(m)(**s)
    if isinstance(m, nn.Linear):
        return nn.Linear(input_shape[-1], output_shape[-1], bias=m.bias is not None)
    if isinstance(m, _NORM):
        return type(m)(input_shape[1], eps=m.eps, affine=m.affine, track_running_stats=m.track_running_stats)
    if _stateless(m):
        return copy.deepcopy(m)
    return None


def trace_sites(model: nn.Module, example_inputs: torch.Tensor) -> list[Site]:
    """Every leaf-module call of one forward pass, in call order (a module called twice appears twice)."""
    sites: list[Site] = []
    counts: dict[str, int] = {}
    hooks = []

    def hook(name: str) -> Callable:
        def record(module, inputs, output):
            if not inputs or not isinstance(inputs[0], torch.Tensor) or not isinstance(output, torch.Tensor):
                return
            n = counts.get(name, 0)
            counts[name] = n + 1
            sites.append(Site(name if n == 0 else f"{name}#{n}", module, tuple(inputs[0].shape), tuple(output.shape)))
        return record

    for name, module in model.named_modules():
        if name and not next(iter(module.children()), None):
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sites


def _changes(before: tuple[int, ...], after: tuple[int, ...], group: str, k: int, terms: Terms) -> None:
    for dim, (a, b) in enumerate(zip(before, after)):
        if a != b:
            terms.setdefault(dim, []).append((group, (a - b) / k))


@dataclass
class ProbeCache:
    """What probing learnt, kept across NetAdapt iterations: pruning a group changes the sites' sizes,
    not how much they change per channel of any group, so a group is probed once per run."""

    groups: set[str] = field(default_factory=set)
    terms: dict[str, tuple[Terms, Terms]] = field(default_factory=dict)


def probe_sites(structure: ModelStructure, example_inputs: torch.Tensor, cache: ProbeCache | None = None) -> list[Site]:
    """The sites of ``structure.model``, each knowing how its shapes change with every group's width.

    One step of channels is removed from each group on a copy and the forward pass traced again:
    a dimension that shrinks by ``d`` when ``k`` channels go is recorded as ``d / k`` per channel.
    With a ``cache``, groups probed before (on an earlier, wider version of the network) are not
    probed again: one forward pass gives the new sizes.
    """
    sites = trace_sites(structure.model, example_inputs)
    by_name = {s.name: s for s in sites}
    current = {g.name for g in structure.groups}
    reuse = cache is not None and all(s.name in cache.terms for s in sites)
    if reuse:
        for site in sites:
            known_in, known_out = cache.terms[site.name]
            site.input_terms = _only(known_in, current)
            site.output_terms = _only(known_out, current)
    for g in structure.groups:
        if reuse and g.name in cache.groups:
            continue
        k = structure.round_removal(g.name, 1)
        if k <= 0:
            continue
        for t in trace_sites(pruned_copy(structure, {g.name: k}).model, example_inputs):
            site = by_name.get(t.name)
            if site is None or len(t.input_shape) != len(site.input_shape):
                continue
            _changes(site.input_shape, t.input_shape, g.name, k, site.input_terms)
            _changes(site.output_shape, t.output_shape, g.name, k, site.output_terms)
        if cache is not None:
            cache.groups.add(g.name)
    if cache is not None:
        for site in sites:
            cache.terms[site.name] = (copy.deepcopy(site.input_terms), copy.deepcopy(site.output_terms))
    return sites


def _only(terms: Terms, groups: set[str]) -> Terms:
    kept = {dim: [(g, per) for g, per in ts if g in groups] for dim, ts in terms.items()}
    return {dim: ts for dim, ts in kept.items() if ts}


def reachable_removals(structure: ModelStructure, group: str) -> list[int]:
    """Every count of channels NetAdapt (or a one-shot prune with the same step) can have removed from ``group``."""
    return structure.removals(group)
