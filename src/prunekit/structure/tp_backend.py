"""The one place where prunekit touches Torch-Pruning (TP): its dependency graph, behind a small interface.

prunekit uses TP for three things: tracing a model into a graph of layers and operations
(``build``), walking that graph from a root layer's channels to every coupled position
(``walk``) and cutting parameter tensors (``prune``).  Everything else (which operations keep
channels, how indices map across them, which channels form units) is prunekit's own, and it talks
to the graph only through :class:`Graph` and the helpers below.  Nodes and edges are opaque
handles outside this module.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import torch_pruning as tp
from torch import nn
from torch_pruning._helpers import _HybridIndex

_OPT = tp.ops.OPTYPE
_STRUCTURAL = (_OPT.CONCAT, _OPT.SPLIT, _OPT.RESHAPE, _OPT.SLICE, _OPT.UNBIND, _OPT.EXPAND)

Node = Any  # a graph node (a layer, an operation or a bare parameter)
Item = tuple[Any, str, list[int], list[int]]  # (node, side "out"/"in", positions, root positions)
Mapping = Callable[[list[tuple[int, int]]], list[tuple[int, int]]]  # [(position, root position)] -> same


class _TPGraph(tp.DependencyGraph):
    """TP's DependencyGraph, built without its index-mapping heuristics (prunekit sets exact ones)."""

    def build_unmapped(self, model: nn.Module, example_inputs: Any, forward_fn: Callable) -> None:
        self.verbose = False
        self.model = model
        self._module2name = {m: n for n, m in model.named_modules()}
        self.ignored_params = []
        self._param_to_name, self.unwrapped_parameters = self._detect_unwrapped_parameters(None)
        self.module2node = self._trace(model, example_inputs, forward_fn, output_transform=None)
        self._build_dependency(self.module2node)


class _Mapped:
    """Adapts a prunekit index mapping on (position, root) pairs to TP's index objects."""

    def __init__(self, fn: Mapping) -> None:
        self.fn = fn

    def __call__(self, idxs: list) -> list:
        return [_HybridIndex(i, r) for i, r in self.fn([(int(x.idx), int(x.root_idx)) for x in idxs])]


class Graph:
    """A traced model: layers, operations and bare parameters as nodes, linked by channel dependencies."""

    def __init__(self) -> None:
        self._tp = _TPGraph()

    # ------------------------------------------------------------------ building
    def build(self, model: nn.Module, example_inputs: Any, forward_fn: Callable) -> "Graph":
        """Trace ``model``: ``forward_fn(model, example_inputs)`` must return the output tensors."""
        self._tp.build_unmapped(model, example_inputs, forward_fn)
        return self

    def nodes(self) -> list[Node]:
        """Every node of the graph."""
        return list(self._tp.module2node.values())

    def node(self, module: Any) -> Node | None:
        """The node of a module (or bare parameter), or None when the trace never met it."""
        return self._tp.module2node.get(module)

    def free_autograd(self) -> None:
        """Drop the references to the trace's autograd graph (and the activations it saved)."""
        for node in self._tp.module2node.values():
            node.grad_fn = None
            if isinstance(node.module, tp.ops._SliceOp):
                node.module.grad_fn = None

    def unwrapped(self) -> dict[int, int]:
        """Bare parameters outside any prunable layer: id(parameter) -> the dimension TP prunes."""
        return {id(p): dim for p, dim in self._tp.unwrapped_parameters}

    # ------------------------------------------------------------------ nodes
    @staticmethod
    def autograd_fn(node: Node) -> Any:
        """The autograd node the trace recorded for ``node`` (None for some layers)."""
        return node.grad_fn

    @staticmethod
    def target(node: Node) -> Any:
        """The module, bare parameter or operation object a node stands for."""
        return node.module

    @staticmethod
    def is_node(obj: Any) -> bool:
        return isinstance(obj, tp.Node)

    @staticmethod
    def inputs(node: Node) -> list[Node]:
        return list(node.inputs)

    @staticmethod
    def outputs(node: Node) -> list[Node]:
        return list(node.outputs)

    def name(self, target: Any) -> str | None:
        """Qualified name of a module or bare parameter of the model; None for operations."""
        if isinstance(target, nn.Parameter):
            return self._tp._param_to_name.get(target)
        if is_operation(target):
            return None
        return self._tp._module2name.get(target)

    @staticmethod
    def param_dim(node: Node) -> int:
        """The dimension of a bare-parameter node that holds the channels."""
        return node.pruning_dim % node.module.dim()

    # ------------------------------------------------------------------ edges
    @staticmethod
    def _edges(a: Node, b: Node) -> list:
        return [dep for dep in a.dependencies if dep.target is b]

    def map_edge(self, a: Node, b: Node, k: int, slot: int, fn: Mapping) -> None:
        """Use ``fn`` to map positions along the ``k``-th edge from ``a`` to ``b`` (slot 0: at
        ``a``'s side, 1: at ``b``'s side, as TP orders them); nothing if there is no such edge."""
        deps = self._edges(a, b)
        if k < len(deps):
            deps[k].index_mapping[slot] = _Mapped(fn)

    def edge_count(self, a: Node, b: Node) -> int:
        return len(self._edges(a, b))

    @staticmethod
    def cut(a: Node, b: Node) -> None:
        """Remove the dependencies between two nodes, both ways."""
        a.dependencies = [dep for dep in a.dependencies if dep.target is not b]
        b.dependencies = [dep for dep in b.dependencies if dep.target is not a]

    @staticmethod
    def stop(node: Node) -> None:
        """A walk that reaches ``node`` goes no further."""
        node.dependencies = []

    def isolate(self, nodes: Iterable[Node]) -> None:
        """No dependency leads to or from these nodes any more."""
        gone = set(nodes)
        for node in self._tp.module2node.values():
            if node in gone:
                node.dependencies = []
            else:
                node.dependencies = [dep for dep in node.dependencies if dep.target not in gone]

    def link(self, a: Node, b: Node, fn: Mapping | None = None, *, b_side: str = "in") -> None:
        """Make pruning ``a``'s output channels prune ``b``'s channels on ``b_side``, positions mapped by ``fn``."""
        pa, pb = self._tp.get_pruner_of_module(a.module), self._tp.get_pruner_of_module(b.module)
        handler = pb.prune_out_channels if b_side == "out" else pb.prune_in_channels
        dep = tp.Dependency(pa.prune_out_channels, handler, source=a, target=b)
        if fn is not None:
            dep.index_mapping[0] = _Mapped(fn)
        a.dependencies.append(dep)

    def plain_ops(self) -> None:
        """Mark reshape/concat/split/slice nodes as element-wise, so TP's own index guesses never run."""
        for node in self._tp.module2node.values():
            if node.type in _STRUCTURAL:
                node.type = _OPT.ELEMENTWISE

    # ------------------------------------------------------------------ walking and pruning
    def side(self, handler: Callable) -> str:
        """'out' for a pruning function of output channels (or of both), else 'in'."""
        return "out" if self._tp.is_out_channel_pruning_fn(handler) else "in"

    def out_fn(self, module: nn.Module) -> Callable:
        """The function that prunes a root layer's output channels."""
        return self._tp.get_pruner_of_module(module).prune_out_channels

    def out_channels(self, module: nn.Module) -> int:
        return self._tp.get_pruner_of_module(module).get_out_channels(module)

    def walk(self, root: nn.Module, fn: Callable, positions: list[int]) -> tuple[list, list[Item]]:
        """Every (edge, positions) that pruning ``positions`` of ``root`` reaches, and the same as items."""
        group = self._tp.get_pruning_group(root, fn, positions)
        steps = [(it.dep, list(it.idxs)) for it in group.items]
        items = [(it.dep.target, self.side(it.dep.handler), list(it.idxs), list(it.root_idxs)) for it in group.items]
        return steps, items

    @staticmethod
    def step_key(dep: Any) -> tuple:
        """Steps with the same key prune the same tensors: their positions merge."""
        return (dep.target, dep.handler)

    def width(self, dep: Any, top: int) -> int | None:
        """How many positions the target of a step has on the side it prunes (None: unknown)."""
        node, handler = dep.target, dep.handler
        target = node.module
        if isinstance(target, nn.Parameter):
            return target.shape[node.pruning_dim]
        if isinstance(target, tp.ops._ConcatOp):
            return sum(target.concat_sizes or [top + 1])
        if isinstance(target, tp.ops._SplitOp):
            return sum(target.split_sizes or [top + 1])
        pruner = self._tp.get_pruner_of_module(target)
        if pruner is None:
            return None
        pruner.pruning_dim = node.pruning_dim
        if self._tp.is_out_channel_pruning_fn(handler):
            return pruner.get_out_channels(target)
        return pruner.get_in_channels(target)

    def prune(self, steps: list[tuple[Any, list[int]]]) -> None:
        """Cut the tensors: each step's positions, all at once."""
        group = tp.Group()
        group._DG = self._tp
        for dep, pos in steps:
            group.add_dep(dep, sorted(pos))
        group.prune(record_history=False)

    # ------------------------------------------------------------------ copying
    def seed_deepcopy(self, memo: dict) -> None:
        """Prepare ``memo`` so that ``copy.deepcopy`` of anything holding this graph works and is consistent.

        TP's pruning functions are shared singletons compared by identity (never copied), and the
        graph's nodes link each other deeply (copied here without recursion).
        """
        dg = self._tp
        for pruner in list(dg.REGISTERED_PRUNERS.values()) + list(dg.CUSTOMIZED_PRUNERS.values()):
            if pruner is not None:
                memo[id(pruner)] = pruner
        memo[id(dg.ops)] = dg.ops
        nodes = list(dg.module2node.values())
        for node in nodes:
            memo[id(node)] = copy.copy(node)
        for node in nodes:
            new = memo[id(node)]
            new.inputs = [memo[id(n)] for n in node.inputs]
            new.outputs = [memo[id(n)] for n in node.outputs]
            new.module = copy.deepcopy(node.module, memo)
            deps = []
            for dep in node.dependencies:
                d = copy.copy(dep)
                d.source, d.target = memo[id(dep.source)], memo[id(dep.target)]
                d.trigger = copy.deepcopy(dep.trigger, memo)
                d.handler = copy.deepcopy(dep.handler, memo)
                d.index_mapping = copy.deepcopy(dep.index_mapping, memo)
                deps.append(d)
            new.dependencies = deps


# ---------------------------------------------------------------------- operation objects
def is_operation(target: Any) -> bool:
    """True for the graph's stand-ins for operations (cat, split, reshape, ...), not model layers."""
    return isinstance(target, nn.Module) and type(target).__module__.startswith("torch_pruning")


def is_concat(target: Any) -> bool:
    return isinstance(target, tp.ops._ConcatOp)


def is_split(target: Any) -> bool:
    return isinstance(target, tp.ops._SplitOp)


def set_concat_sizes(op: Any, sizes: list[int]) -> None:
    op.concat_sizes = list(sizes)


def concat_sizes(op: Any) -> list[int]:
    """Current input sizes of a concatenation (kept up to date as channels are pruned)."""
    return op.concat_sizes


def set_split_sizes(op: Any, sizes: list[int]) -> None:
    op.split_sizes = list(sizes)
    op.offsets = None


def split_sizes(op: Any) -> list[int]:
    """Current piece sizes of a split (kept up to date as channels are pruned)."""
    return op.split_sizes


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution (its input and output channels are the same channels)."""
    return tp.ops.module2type(module) == _OPT.DEPTHWISE_CONV
