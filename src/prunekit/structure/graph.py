"""Tracing: the dependency graph (tp_backend.Graph), plus the facts prunekit needs to check it.

The graph is traced through autograd and links every layer and operation.  On top of it we
record each prunable module call (its input tensors and output) and the model outputs, so that
:mod:`prunekit.structure.fallbacks` can check every operation with real shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.structure.datatypes import StructureError
from prunekit.structure.tp_backend import Graph

# Module types the graph prunes with a registered pruning function (its "wrapped" modules).
PRUNABLE_TYPES: tuple[type, ...] = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.Linear,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.PReLU,
    nn.Embedding,
    nn.MultiheadAttention,
    nn.LSTM,
)

Edge = tuple[Any, int]  # (autograd node or None, output index)


@dataclass
class ModuleCall:
    """One call of a prunable module during the trace."""

    module: nn.Module
    name: str
    inputs: list[Edge]  # tensor arguments, in order
    input_shapes: list[tuple[int, ...]]
    output: Any  # autograd node of the (first) output tensor
    output_shape: tuple[int, ...]
    internal: set = field(default_factory=set)  # autograd nodes created inside the call


@dataclass
class Trace:
    """A dependency graph with the module calls and outputs recorded while it was traced."""

    dg: Graph
    calls: list[ModuleCall]
    outputs: list[Edge]
    node_of: dict  # autograd node -> graph node
    markers: dict = field(default_factory=dict)  # watched module -> [sequence number at each call's start]


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """The tensors in a (nested) tuple/list/dict, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in tensors_in(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in tensors_in(o)]
    return []


def call_model(model: nn.Module, example_inputs: Any) -> Any:
    """Run ``model`` on example inputs given as a tensor, a tuple/list of arguments or a dict."""
    if isinstance(example_inputs, dict):
        return model(**example_inputs)
    if isinstance(example_inputs, (list, tuple)):
        return model(*example_inputs)
    return model(example_inputs)


def _edge(t: torch.Tensor) -> Edge:
    if t.grad_fn is not None:
        return (t.grad_fn, t.output_nr)
    return (None, 0)


def _internal_nodes(call: ModuleCall, first_seq: int) -> set:
    """Autograd nodes between a module call's inputs and its output (the module's own ops)."""
    stop = {fn for fn, _ in call.inputs if fn is not None}
    seen: set = set()
    stack = [call.output]
    while stack:
        fn = stack.pop()
        for nxt, _ in fn.next_functions:
            if nxt is None or nxt in stop or nxt in seen or not hasattr(nxt, "next_functions"):
                continue
            if "AccumulateGrad" in nxt.name() or nxt._sequence_nr() < first_seq:
                continue
            seen.add(nxt)
            stack.append(nxt)
    return seen


def _marker() -> int:
    """The current autograd sequence number: every node created later is numbered above it."""
    return (torch.ones(1, requires_grad=True) * 1).grad_fn._sequence_nr()


def trace(model: nn.Module, example_inputs: Any, watch: tuple[nn.Module, ...] = ()) -> Trace:
    """Trace ``model`` into a Graph and record module calls; raises StructureError if it cannot run.

    For each module in ``watch`` (attention layers) the start of each of its calls is recorded too.
    """
    markers: dict = {m: [] for m in watch}
    names = {m: n for n, m in model.named_modules()}
    calls: list[ModuleCall] = []
    pending: dict[int, list[tuple[list[Edge], list, int]]] = {}  # per module: calls in progress
    stack: list[str] = []
    outputs: list[Edge] = []

    def pre_all(module, args):
        stack.append(names.get(module, type(module).__name__))

    def post_all(module, args, out):
        if stack:
            stack.pop()

    def pre(module, args, kwargs):
        ts = tensors_in(args) + tensors_in(kwargs)
        marker = _marker()  # everything created later is inside the call
        pending.setdefault(id(module), []).append(([_edge(t) for t in ts], [tuple(t.shape) for t in ts], marker))

    def post(module, args, kwargs, out):
        ins, shapes, marker = pending[id(module)].pop()
        outs = tensors_in(out)
        if not outs or outs[0].grad_fn is None:
            return
        call = ModuleCall(module, names.get(module, ""), ins, shapes, outs[0].grad_fn, tuple(outs[0].shape))
        call.internal = _internal_nodes(call, marker)
        calls.append(call)

    def forward_fn(m: nn.Module, inputs: Any) -> list[torch.Tensor]:
        hooks = []
        for mod in m.modules():
            hooks.append(mod.register_forward_pre_hook(pre_all))
            hooks.append(mod.register_forward_hook(post_all))
            if mod in markers:
                hooks.append(mod.register_forward_pre_hook(lambda mm, a: markers[mm].append(_marker())))
            if isinstance(mod, PRUNABLE_TYPES):
                hooks.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
                hooks.append(mod.register_forward_hook(post, with_kwargs=True))
        try:
            out = call_model(m, inputs)
        finally:
            for h in hooks:
                h.remove()
        ts = [t for t in tensors_in(out) if t.grad_fn is not None]
        outputs.extend(_edge(t) for t in ts)
        if not ts:
            raise StructureError("the model's outputs do not depend on any parameter; nothing to prune")
        return ts

    dg = Graph()
    try:
        with torch.enable_grad():
            dg.build(model, example_inputs, forward_fn)
    except StructureError:
        raise
    except Exception as err:  # the model's own failure, or the tracer's
        where = f" in module '{stack[-1]}'" if stack else ""
        raise StructureError(
            f"cannot trace the model{where}: {type(err).__name__}: {err}"
        ) from err
    node_of = {}
    for node in dg.nodes():
        if dg.autograd_fn(node) is not None:
            node_of[dg.autograd_fn(node)] = node
    for call in calls:
        node = dg.node(call.module)
        if node is not None:
            node_of[call.output] = node
    return Trace(dg, calls, outputs, node_of, markers)
