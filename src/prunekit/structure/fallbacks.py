"""Checks every traced operation against what the dependency graph assumes about it, and fixes the graph.

The graph treats any operation it does not know as element-wise, and its own index mappings guess
channel counts for reshapes, concatenations and splits; where that guess is wrong the pruned model still runs but computes
something else.  Here the channel dimension is followed through the real autograd graph, with
real shapes, in forward order:

* operations that keep channels where they are (activations, pooling, adds, permutes, ...) pass;
* reshapes, concatenations, splits and channel shuffles get exact index mappings (mappings.py);
* a broadcast operand (an SE scale, a 1-channel attention map) is cut from the channels it scales;
* anything else is *blocked*: the channels that flow through it are kept whole, with a reason.

The result also lists the coupling constraints (grouped convolutions, GroupNorm groups, attention
heads, chunks, shuffles) that make several channels one removable unit.  The per-operation rules
live in oprules.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunekit.structure import attention
from prunekit.structure.graph import ModuleCall, Trace
from prunekit.structure.mappings import ConcatMapping, FlattenMapping, SplitMapping
from prunekit.structure.oprules import RISKY, Blocked, Chan, Constraint, OpRules, base_name
from prunekit.structure.tp_backend import is_concat, is_depthwise, is_operation, is_split, set_concat_sizes, set_split_sizes

# LayerNorm subclasses with their own forward that still normalise the last dimension only
LAST_DIM_NORMS = {"timm.layers.norm.LayerNorm"}


@dataclass
class Checked:
    """What the check found: blocked nodes, unit constraints, shuffle states and unverified ops."""

    blocked: dict = field(default_factory=dict)  # graph node -> (side: "all"|"out"|"in", reason)
    constraints: list[Constraint] = field(default_factory=list)
    shuffles: dict = field(default_factory=dict)  # graph node at shuffle input -> ShuffleState
    internal: set = field(default_factory=set)  # graph nodes that are ops inside a prunable module
    inert: set = field(default_factory=set)  # graph nodes that carry no prunable channels
    sinks: set = field(default_factory=set)  # reductions over the channels: groups end there, inexact
    unverified: set = field(default_factory=set)  # nodes whose other operand's shape is unknown
    risky: set = field(default_factory=set)  # nodes whose sizes the model's code may hard-code
    sites: list = field(default_factory=list)  # attention layers handled as a whole (attention.Site)


class _Checker(OpRules):
    """Walks the autograd graph in forward order, recording where channels are (``self.chan``)."""

    def __init__(self, tr: Trace, sites: list, mode: str) -> None:
        self.tr, self.dg, self.mode = tr, tr.dg, mode
        self.out = Checked()
        self.chan: dict = {}  # (autograd node, output nr) -> Chan | None
        self.calls: dict = {c.output: c for c in tr.calls}
        self.internal_fns: set = set().union(*(c.internal for c in tr.calls)) if tr.calls else set()
        self.consumers: dict = {}
        self.handled: set = set()
        self.cause: dict = {}  # (autograd node, nr) -> why its channels cannot be pruned
        self.cuts: list = []
        self.concats: list = []
        self.splits: list = []
        self.flattens: list = []
        self.sinks: list = []
        self.unwrapped = self.dg.unwrapped()
        self.sites, self.severed = self.attention_sites(sites)

    def attention_sites(self, sites: list) -> tuple[list, set]:
        """The attention layers whose inside is known (attention.py), and the autograd nodes inside them."""
        calls: dict = {}
        for c in self.tr.calls:
            calls.setdefault(c.module, []).append(c)
        known, inside = [], set()
        for site in sites:
            fns = attention.inner_fns(site, calls, self.tr.markers.get(site.module, []))
            if fns is not None:
                known.append(site)
                inside |= fns
        self.internal_fns |= inside
        return known, inside

    # ---------------------------------------------------------------- helpers
    def node(self, fn):
        return self.tr.node_of.get(fn)

    def block(self, fn_or_node, reason: str, side: str = "all") -> None:
        """Keep the channels through a node whole (on one side of a layer, or entirely)."""
        node = fn_or_node if self.dg.is_node(fn_or_node) else self.node(fn_or_node)
        if node is None:
            return
        old = self.out.blocked.get(node)
        if old is not None and (old[0] == "all" or old[0] == side):
            return
        self.out.blocked[node] = ("all" if old else side, reason if old is None else old[1])

    def where(self, fn) -> str:
        """'after layer X' for an operation: the closest prunable layer that feeds it."""
        seen, stack = set(), [fn]
        while stack:
            f = stack.pop(0)
            for nxt, _ in f.next_functions:
                if nxt is None or nxt in seen:
                    continue
                seen.add(nxt)
                call = self.calls.get(nxt)
                if call is not None:
                    return f" after '{call.name}'"
                stack.append(nxt)
            if len(seen) > 200:
                break
        return ""

    def op_reason(self, fn, what: str) -> str:
        return f"operation {fn.name()}{self.where(fn)} {what}"

    @staticmethod
    def shape(fn, nr: int) -> tuple[int, ...]:
        return tuple(fn._input_metadata[nr].shape)

    # ---------------------------------------------------------------- main loop
    def run(self) -> Checked:
        """Visit every autograd node in forward order, then fix the graph."""
        fns, stack = set(), [fn for fn, _ in self.tr.outputs]
        while stack:
            fn = stack.pop()
            if fn is None or fn in fns:
                continue
            fns.add(fn)
            for nxt, nr in fn.next_functions:
                if nxt is not None:
                    self.consumers.setdefault(nxt, []).append((fn, nr))
                    stack.append(nxt)
        for fn in sorted(fns, key=lambda f: ("AccumulateGrad" not in f.name(), f._sequence_nr())):
            if "AccumulateGrad" in fn.name():
                dim = self.unwrapped.get(id(fn.variable))
                self.chan[(fn, 0)] = Chan(dim) if dim is not None else None
            elif fn in self.calls:
                self.visit_call(self.calls[fn])
            elif fn in self.internal_fns:
                node = self.node(fn)
                if node is not None:
                    self.out.internal.add(node)
            elif fn not in self.handled:
                self.visit_op(fn)
        self.mark_outputs()
        self.apply()
        self.out.sites = self.sites
        return self.out

    def ins(self, fn) -> list[tuple[Any, int, Chan | None]]:
        return [(f, nr, self.chan.get((f, nr)) if f is not None else None) for f, nr in fn.next_functions]

    def set_out(self, fn, chans: list) -> None:
        for nr, c in enumerate(chans):
            self.chan[(fn, nr)] = c

    # ---------------------------------------------------------------- prunable modules
    def visit_call(self, call: ModuleCall) -> None:
        """A prunable module: does it receive its channels where its pruning function expects?"""
        m, fn = call.module, call.output
        node = self.dg.node(m)
        chans = [self.chan.get((f, nr)) if f is not None else None for f, nr in call.inputs]
        c = chans[0] if chans else None
        shape = call.input_shapes[0] if call.input_shapes else ()
        nd_out = len(call.output_shape)
        name = f"'{call.name}' ({type(m).__name__})"
        out: Chan | None = None
        if isinstance(m, nn.modules.conv._ConvNd):
            out = Chan(1)
            depthwise = m.groups == m.out_channels and m.out_channels > 1
            if c is not None and (c.dim != 1 or c.stride != 1):
                self.block(node, f"{name} receives channels that are not its input channels", "in")
            if m.transposed and m.groups > 1:
                self.block(node, f"{name}: grouped transposed convolutions are not supported")
            elif depthwise and m.in_channels != m.out_channels:
                self.block(node, f"{name}: depthwise convolution with a channel multiplier")
            elif depthwise and c is None:
                self.block(node, f"{name}: its input channels cannot be pruned (model input)")
            elif m.groups > 1 and not depthwise:
                self.group_constraint(node, "in", m.in_channels, m.groups)
                self.group_constraint(node, "out", m.out_channels, m.groups)
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.PReLU)):
            if isinstance(m, nn.PReLU) and m.num_parameters == 1:
                out = c
            elif c is None or c.dim != 1:
                self.block(node, f"{name} normalises channels that cannot be pruned here")
            else:
                out = c
                if isinstance(m, nn.GroupNorm) and m.num_groups > 1:
                    self.group_constraint(node, "out", m.num_channels, m.num_groups)
        elif isinstance(m, nn.Linear):
            out = Chan(nd_out - 1)
            if c is not None and c.dim != len(shape) - 1:
                self.block(node, f"{name} receives channels that are not its input features", "in")
        elif isinstance(m, nn.LayerNorm):
            plain = type(m).forward is nn.LayerNorm.forward or f"{type(m).__module__}.{type(m).__qualname__}" in LAST_DIM_NORMS
            want = len(shape) - 1 if plain else 1 if type(m).__name__ == "LayerNorm2d" else None
            if len(m.normalized_shape) != 1 or want is None:
                self.block(node, f"{name}: this LayerNorm variant is not supported")
            elif c is None or c.dim != want:
                self.block(node, f"{name} normalises channels that cannot be pruned here")
            else:
                out = c
        elif isinstance(m, nn.Embedding):
            out = Chan(nd_out - 1)
        elif isinstance(m, nn.MultiheadAttention):
            if not m._qkv_same_embed_dim or any(x is None or x.dim != len(shape) - 1 for x in chans[:3]):
                self.block(node, f"{name}: only self-attention with equal q/k/v sizes is supported")
            else:
                out = Chan(nd_out - 1)
                if self.mode == "none":
                    self.block(node, "excluded")  # attention widths kept whole, as asked
                elif node is not None:
                    self.out.constraints.append(Constraint(node, "out", attention.mha_tuples(m, self.mode)))
        else:
            self.block(node, f"{name} is not supported")
        self.chan[(fn, 0)] = out
        if out is None:  # remember why, for the operations that meet these channels later
            why = next((self.cause[e] for e in call.inputs if e in self.cause), None)
            why = why or self.out.blocked.get(node, ("", None))[1]
            if why:
                self.cause[(fn, 0)] = why

    def group_constraint(self, node, side: str, width: int, groups: int) -> None:
        """Channels ``g*(width/groups) + u`` for every g must go together (same u in each group)."""
        if node is None or groups <= 1:
            return
        per = width // groups
        tuples = [tuple(g * per + u for g in range(groups)) for u in range(per)]
        self.out.constraints.append(Constraint(node, side, tuples))

    # ---------------------------------------------------------------- operations
    def visit_op(self, fn) -> None:
        """Any other operation, through the rules of oprules.py."""
        ins = self.ins(fn)
        outs = [tuple(m.shape) for m in fn._input_metadata]
        carriers = [(f, nr, c) for f, nr, c in ins if c is not None]
        node = self.node(fn)
        if not carriers:
            if node is not None:
                self.out.inert.add(node)
            self.set_out(fn, [None] * len(outs))
            why = next((self.cause[(f, nr)] for f, nr, _ in ins if (f, nr) in self.cause), None)
            if why is not None:
                self.cause.update({(fn, nr): why for nr in range(len(outs))})
            return
        op = base_name(fn.name())
        f0, nr0, c0 = carriers[0]
        s0 = self.shape(f0, nr0)
        d = c0.dim
        try:
            chans = self.rule(fn, op, ins, carriers, outs, s0, d, c0)
        except Blocked as why:
            reason = self.op_reason(fn, str(why))
            culprit = next((self.cause[(f, nr)] for f, nr, c in ins if c is None and (f, nr) in self.cause), None)
            if culprit is None or "cannot be pruned" not in str(why):
                culprit = None
            self.block(fn, reason + (f" (because {culprit})" if culprit else ""))
            chans = [None] * len(outs)
            # later operations that meet these channels report the first cause, not this one
            self.cause.update({(fn, nr): culprit or reason for nr in range(len(outs))})
        if node is not None and (op in RISKY or node in self.out.unverified):
            self.out.risky.add(node)
        self.set_out(fn, chans)

    def mark_outputs(self) -> None:
        """Channels that reach a model output are never pruned."""
        for fn, _ in self.tr.outputs:
            node = self.node(fn)
            if node is None:
                continue
            module = self.dg.target(node)
            side = "out" if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and not is_depthwise(module) else "all"
            self.block(node, "model output", side)

    def wire_attention(self) -> None:
        """Cut the graph inside known attention layers and link their projections instead."""
        self.dg.isolate({self.node(fn) for fn in self.severed} - {None})
        for site in self.sites:
            if site.mode == "none":
                for q in site.q:
                    self.block(self.dg.node(q), "excluded", "out")  # attention widths kept whole, as asked
                continue
            for node, side, tuples in attention.wire(self.dg, site):
                self.out.constraints.append(Constraint(node, side, tuples))
                if site.mode == "head_dims":  # the scale 1/sqrt(head_dim) may follow the width
                    self.out.sinks.add(node)

    def apply(self) -> None:
        """Give the graph exact index mappings, cut broadcast edges and stop its walks at blocked ops."""
        for fn, ins, sizes in self.concats:
            cat = self.node(fn)
            op = self.dg.target(cat) if cat is not None else None
            if not is_concat(op):
                continue
            set_concat_sizes(op, sizes)
            used: dict = {}
            for arg, (f, _, _) in enumerate(ins):
                src = self.node(f) if f is not None else None
                if src is None:
                    continue
                k = used.get(src, 0)
                used[src] = k + 1
                self.dg.map_edge(src, cat, k, 1, ConcatMapping(op, arg, reverse=False))
                self.dg.map_edge(cat, src, k, 1, ConcatMapping(op, arg, reverse=True))
        for fn, sizes in self.splits:
            node = self.node(fn)
            op = self.dg.target(node) if node is not None else None
            if not is_split(op):
                continue
            set_split_sizes(op, sizes)
            done: dict = {}
            for user, nr in self.consumers.get(fn, []):
                dst = self.node(user)
                if dst is None:
                    continue
                k = done.get(dst, 0)
                done[dst] = k + 1
                self.dg.map_edge(node, dst, k, 0, SplitMapping(op, nr, reverse=False))
                self.dg.map_edge(dst, node, k, 0, SplitMapping(op, nr, reverse=True))
        for fn, q in self.flattens:
            node = self.node(fn)
            for src in (self.dg.inputs(node) if node is not None else []):
                for k in range(self.dg.edge_count(src, node)):
                    self.dg.map_edge(src, node, k, 0, FlattenMapping(q, reverse=False))
                for k in range(self.dg.edge_count(node, src)):
                    self.dg.map_edge(node, src, k, 0, FlattenMapping(q, reverse=True))
        for fn in self.sinks:
            node = self.node(fn)
            if node is not None:
                self.out.sinks.add(node)
                self.cuts.extend((node, out) for out in self.dg.outputs(node))
        for a, b in self.cuts:
            if a is None or b is None:
                continue
            self.dg.cut(a, b)
        self.wire_attention()
        self.dg.plain_ops()  # the graph's own index-mapping pass must leave them alone
        for node in self.dg.nodes():
            side = self.out.blocked.get(node, ("",))[0]
            target = self.dg.target(node)
            if side == "all" and (not isinstance(target, nn.Module) or is_operation(target)):
                self.dg.stop(node)  # the walk stops here: no guessing what lies beyond


def check(tr: Trace, sites: list = (), mode: str = attention.DEFAULT_MODE) -> Checked:
    """Check the traced graph, fix its mappings in place and return what was found.

    ``sites`` are the attention layers found by :func:`attention.find_sites`; ``mode`` how
    ``nn.MultiheadAttention`` layers are pruned (see attention.py).
    """
    return _Checker(tr, list(sites), mode).run()
