"""How each traced operation moves channels: the rules behind fallbacks.py.

A tensor's prunable channels sit in one dimension (``Chan``).  For every autograd operation the
rules say where they are after it, or raise :class:`Blocked` when the operation mixes, reorders
or reshapes channels in a way prunekit cannot follow exactly.  Concatenations, splits, flattens
and channel shuffles are recorded so that fallbacks.py can give the dependency graph exact mappings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod
from typing import Any

from prunekit.structure.mappings import ShuffleMapping, ShuffleState

@dataclass(frozen=True)
class Chan:
    """Where a tensor carries prunable channels: dimension, and stride if flattened with later dims."""

    dim: int
    stride: int = 1


@dataclass
class Constraint:
    """Positions of one node's channels (on its "out" or "in" side) that must be removed together."""

    node: Any
    side: str
    tuples: list[tuple[int, ...]]


UNARY = {
    "Relu", "Hardtanh", "Sigmoid", "Silu", "Gelu", "Hardswish", "Hardsigmoid", "Tanh", "LeakyRelu",
    "Elu", "Selu", "Celu", "Softplus", "Mish", "Threshold", "Clamp", "ClampMin", "ClampMax", "Neg",
    "Exp", "Log", "Abs", "Sqrt", "Rsqrt", "Reciprocal", "Erf", "Clone", "Alias", "ToCopy",
    "NativeDropout", "FusedDropout", "LogSigmoid", "Softshrink", "Hardshrink", "Sin", "Cos", "Pow",
    "Sign", "Sgn", "Round", "Floor", "Ceil", "Trunc", "Frac", "Expm1", "Log1p", "Log2", "Log10",
    "NanToNum", "RreluWithNoise", "Square", "Lift", "LiftFresh", "Detach", "Tan", "Atan", "Asin",
    "Acos", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erfc", "Erfinv", "Logit", "Deg2Rad",
}
BINARY = {
    "Add", "Sub", "Mul", "Div", "Maximum", "Minimum", "Fmax", "Fmin", "Rsub", "Where", "Atan2",
    "Lerp", "Addcmul", "Addcdiv", "Hypot", "Copysign", "Xlogy", "Remainder", "Fmod",
}
REDUCE = {
    "Mean", "Sum", "Amax", "Amin", "Max", "Min", "Std", "Var", "Norm", "Logsumexp", "Prod",
    "Nansum", "StdMean", "VarMean", "LinalgVectorNorm", "Median", "Nanmedian",
}
SPATIAL = {  # ops on (N, C, *spatial) tensors that keep each channel separate
    "MaxPool2DWithIndices", "MaxPool3DWithIndices", "AvgPool2D", "AvgPool3D", "AdaptiveAvgPool2D",
    "AdaptiveAvgPool3D", "AdaptiveMaxPool2D", "AdaptiveMaxPool3D", "AdaptiveMaxPool1D",
    "UpsampleNearest1D", "UpsampleNearest2D", "UpsampleNearest3D", "UpsampleNearestExact1D",
    "UpsampleNearestExact2D", "UpsampleNearestExact3D", "UpsampleBilinear2D", "UpsampleBicubic2D",
    "UpsampleLinear1D", "UpsampleTrilinear3D", "ReflectionPad1D", "ReflectionPad2D",
    "ReflectionPad3D", "ReplicationPad1D", "ReplicationPad2D", "ReplicationPad3D",
    "FractionalMaxPool2D", "FractionalMaxPool3D", "AvgPool1D", "MaxPool1DWithIndices",
}
MATMUL = {"Addmm", "Mm", "Bmm", "Baddbmm", "Addbmm", "Matmul", "Linear", "Einsum", "Mv", "Addmv", "Dot"}
VIEW = {"View", "UnsafeView", "ReshapeAlias", "Reshape", "ViewAs"}
# shapes a model's code may spell out (x.view(n, 768, -1)): pruning through them is tried on a copy
RISKY = VIEW | {"Expand", "Repeat", "Split", "SplitWithSizes", "UnsafeSplit", "UnsafeSplitWithSizes", "Unbind"}


def base_name(name: str) -> str:
    """'AddBackward0' -> 'Add'."""
    return re.sub(r"Backward\d*$", "", name.rsplit("::", 1)[-1])


def norm_dim(d: int, ndim: int) -> int:
    """A dimension index as a non-negative int."""
    if d >= 2**63:  # autograd stores negative dims as unsigned 64-bit
        d -= 2**64
    return d + ndim if d < 0 else d


def norm_dims(ds: Any, ndim: int) -> list[int]:
    """Dimension indices (an int or a sequence) as non-negative ints."""
    if isinstance(ds, int):
        ds = [ds]
    return [norm_dim(int(d), ndim) for d in ds]


class Blocked(Exception):
    """An operation that prunekit cannot prune through (the message says why)."""


class OpRules:
    """Rules for non-module operations; mixed into the checker, whose state they use."""

    def rule(self, fn, op, ins, carriers, outs, s0, d, c0) -> list:
        """Where the channels are in each output of ``fn`` (``op`` is its base name)."""
        if op == "Pow" and len(ins) > 1:
            return [self.binary(fn, ins, carriers, outs[0])]
        if op in UNARY or op == "AsStrided":
            if op == "AsStrided" and not (fn._saved_storage_offset in (0, None) and (
                    all(s == 1 for i, s in enumerate(outs[0]) if i != d) or self.same_layout(fn, s0, outs[0]))):
                raise Blocked("reads channels at arbitrary strides")
            if len(carriers) != len(ins) or outs[0] != s0:
                raise Blocked("changes the channels' shape")
            return [c0]
        if op in BINARY:
            return [self.binary(fn, ins, carriers, outs[0])]
        if op in REDUCE:
            dims = getattr(fn, "_saved_dim", None)
            full = dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0)
            dims = list(range(len(s0))) if full else norm_dims(dims, len(s0))
            if d in dims:  # a statistic of the channels (CBAM's channel mean/max): like a LayerNorm,
                self.sinks.append(fn)  # pruning changes it a little; nothing to prune after it
                return [None] * len(outs)
            keep = bool(getattr(fn, "_saved_keepdim", False))
            return [Chan(d if keep else d - sum(x < d for x in dims), c0.stride)] + [None] * (len(outs) - 1)
        if op in SPATIAL:
            if d != 1 or c0.stride != 1:
                raise Blocked("pools over a dimension that holds channels")
            return [Chan(1)] + [None] * (len(outs) - 1)
        if op == "ConstantPadNd":
            pad = list(fn._saved_pad)
            padded = {len(s0) - 1 - i // 2 for i, p in enumerate(pad) if p != 0}
            if d in padded:
                raise Blocked("pads the channels")
            return [c0]
        if op in ("Roll", "Flip"):
            dims = norm_dims(fn._saved_dims, len(s0))
            if not dims or d in dims:
                raise Blocked("reorders the channels")
            return [c0]
        if op == "Permute":
            return [Chan(norm_dims(fn._saved_dims, len(s0)).index(d), c0.stride)]
        if op == "Transpose":
            d0, d1 = norm_dim(fn._saved_dim0, len(s0)), norm_dim(fn._saved_dim1, len(s0))
            return [Chan(d1 if d == d0 else d0 if d == d1 else d, c0.stride)]
        if op == "T":
            return [Chan(len(s0) - 1 - d, c0.stride)]
        if op == "Unsqueeze":
            u = norm_dim(fn._saved_dim, len(outs[0]))
            return [Chan(d + (u <= d), c0.stride)]
        if op == "Squeeze":
            return [self.squeeze(s0, outs[0], d, c0)]
        if op in VIEW:
            return [self.view(fn, s0, outs[0], d, c0)]
        if op == "Expand":
            shift = len(outs[0]) - len(s0)
            if s0[d] == 1 and outs[0][d + shift] != 1:
                raise Blocked("broadcasts a single channel")
            return [Chan(d + shift, c0.stride)]
        if op == "Repeat":
            reps = list(fn._saved_repeats)
            shift = len(reps) - len(s0)
            if reps[d + shift] != 1:
                raise Blocked("repeats the channels")
            return [Chan(d + shift, c0.stride)]
        if op == "Cat":
            return [self.cat(fn, ins, outs[0])]
        if op == "Stack":
            return [self.stack(fn, ins, outs[0], d, c0)]
        if op in ("Split", "SplitWithSizes", "UnsafeSplit", "UnsafeSplitWithSizes"):
            return self.split(fn, s0, outs, d, c0)
        if op == "Unbind":
            u = norm_dim(fn._saved_dim, len(s0))
            if u == d:
                raise Blocked("unbinds the channels")
            return [Chan(d - (u < d), c0.stride)] * len(outs)
        if op == "Slice":
            s = norm_dim(fn._saved_dim, len(s0))
            full = fn._saved_start in (0, None) and fn._saved_step == 1 and (fn._saved_end is None or fn._saved_end >= s0[s])
            if s == d and not full:
                raise Blocked("slices the channels")
            return [c0]
        if op == "Select":
            s = norm_dim(fn._saved_dim, len(s0))
            if s == d:
                raise Blocked("selects single channels")
            return [Chan(d - (s < d), c0.stride)]
        if op == "Index":
            where = [i for i, t in enumerate(fn._saved_indices) if t is not None]
            # indices only after the channels, side by side: the channels' dim does not move
            if not where or min(where) <= d or where != list(range(where[0], where[-1] + 1)):
                raise Blocked("indexes the channels")
            return [c0]
        if op in ("Softmax", "LogSoftmax"):
            if norm_dim(fn._saved_dim, len(s0)) == d:
                raise Blocked("normalises across the channels")
            return [c0]
        if op in MATMUL:
            raise Blocked("is a matrix product outside a Linear layer (F.linear, matmul, einsum), "
                          "which prunekit does not understand")
        raise Blocked("is not understood by prunekit")

    @staticmethod
    def same_layout(fn, s0, out) -> bool:
        """An as_strided that only restates a contiguous tensor's layout (channels-last pooling)."""
        if tuple(out) != tuple(s0) or tuple(fn._saved_size) != tuple(s0):
            return False
        want, acc = [], 1
        for size in reversed(s0):
            want.append(acc)
            acc *= size
        want.reverse()
        return all(st == w for size, st, w in zip(s0, fn._saved_stride, want) if size > 1)

    def binary(self, fn, ins, carriers, out) -> Chan | None:
        """Broadcasting element-wise op: operands broadcast along the channels are cut from them."""
        nd = len(out)
        dims = {c.dim + nd - len(self.shape(f, nr)) for f, nr, c in carriers}
        strides = {c.stride for _, _, c in carriers}
        if len(dims) != 1 or len(strides) != 1:
            raise Blocked("combines channels from different dimensions")
        d = dims.pop()
        node = self.node(fn)
        full = False
        for slot, (f, nr, c) in enumerate(ins):
            if f is None:  # an operand without gradient: a constant, buffer, scalar or model input
                shape = self.saved_operand(fn, slot)
                if shape is None:
                    if node is not None:
                        self.out.unverified.add(node)
                    continue
            else:
                shape = self.shape(f, nr)
            size = shape[d - (nd - len(shape))] if d - (nd - len(shape)) >= 0 else 1
            if size == out[d] and out[d] > 1:
                if c is None:
                    raise Blocked("combines the channels with channels that cannot be pruned")
                full = True
            elif f is not None:  # broadcast along the channels: not coupled to them
                self.cuts.append((node, self.node(f)))
        return Chan(d, strides.pop()) if full else None

    @staticmethod
    def saved_operand(fn, slot: int) -> tuple[int, ...] | None:
        """Shape of an operand without gradient, where autograd saved it (mul, div)."""
        attr = {0: "_saved_self", 1: "_saved_other"}.get(slot)
        t = getattr(fn, attr, None) if attr else None
        return tuple(t.shape) if t is not None and hasattr(t, "shape") else None

    def squeeze(self, s0, out, d, c0) -> Chan:
        """squeeze: the channels' dim moves left past removed size-1 dims."""
        if len(out) == len(s0):
            return c0
        # squeezed dims are size-1 dims of the input; match the rest in order
        kept, j = [], 0
        for i, s in enumerate(s0):
            if j < len(out) and s == out[j] and not (s == 1 and len(s0) - i > len(out) - j):
                kept.append(i)
                j += 1
        if d not in kept:
            raise Blocked("squeezes the channels")
        return Chan(kept.index(d), c0.stride)

    def view(self, fn, s0, out, d, c0) -> Chan:
        """view/reshape: channels kept as a dim, flattened with later dims, or a channel shuffle."""
        lead = prod(s0[:d])
        c = s0[d]
        for k in range(len(out)):
            if prod(out[:k]) != lead:
                continue
            if out[k] == c:
                return Chan(k, c0.stride)
            if c0.stride != 1:
                continue
            if out[k] > c and out[k] % c == 0:
                q, acc = out[k] // c, 1
                for s in s0[d + 1 :]:
                    acc *= s
                    if acc == q:
                        self.flattens.append((fn, q))
                        return Chan(k, q)
            if out[k] < c and c % out[k] == 0 and k + 1 < len(out) and out[k] * out[k + 1] == c:
                shuffled = self.shuffle(fn, k, out[k], c, d)
                if shuffled is not None:
                    return shuffled
        raise Blocked("reshapes the channels in a way prunekit does not understand")

    def shuffle(self, fn, k: int, groups: int, width: int, d: int) -> Chan | None:
        """view(.., g, C/g, ..) -> transpose(g, C/g) -> [contiguous] -> view(.., C, ..)."""
        chain = [fn]
        nxt = self.single_consumer(fn)
        if nxt is None or base_name(nxt.name()) not in ("Transpose", "Permute"):
            return None
        nd = len(fn._input_metadata[0].shape)
        perm = list(range(nd))
        perm[k], perm[k + 1] = k + 1, k
        if base_name(nxt.name()) == "Transpose":
            swapped = sorted((norm_dim(nxt._saved_dim0, nd), norm_dim(nxt._saved_dim1, nd)))
            if swapped != [k, k + 1]:
                return None
        elif norm_dims(nxt._saved_dims, nd) != perm:
            return None
        chain.append(nxt)
        cur = self.single_consumer(nxt)
        while cur is not None and base_name(cur.name()) in ("Clone", "Contiguous", "Alias"):
            chain.append(cur)
            cur = self.single_consumer(cur)
        if cur is None or base_name(cur.name()) not in VIEW:
            return None
        shaped = self.shape(nxt, 0)
        out = tuple(cur._input_metadata[0].shape)
        lead = prod(shaped[:k])
        ks = [j for j in range(len(out)) if prod(out[:j]) == lead and out[j] == width]
        if not ks:
            return None
        chain.append(cur)
        nodes = [self.node(f) for f in chain]
        if any(n is None for n in nodes):
            return None
        state = ShuffleState(width, groups)
        first = nodes[0]
        self.out.shuffles[first] = state
        per = width // groups
        self.out.constraints.append(
            Constraint(first, "out", [tuple(a * per + b for a in range(groups)) for b in range(per)])
        )
        for k in range(self.dg.edge_count(first, nodes[1])):
            self.dg.map_edge(first, nodes[1], k, 0, ShuffleMapping(state, reverse=False))
        for k in range(self.dg.edge_count(nodes[1], first)):
            self.dg.map_edge(nodes[1], first, k, 0, ShuffleMapping(state, reverse=True))
        self.handled.update(chain[1:])
        self.chan[(cur, 0)] = Chan(ks[0])
        return Chan(k)  # inside the shuffle; only the chain's last view is looked at afterwards

    def single_consumer(self, fn):
        """The only operation that uses ``fn``'s output, or None."""
        users = self.consumers.get(fn, [])
        return users[0][0] if len(users) == 1 else None

    def cat(self, fn, ins, out) -> Chan:
        """torch.cat: along the channels (offsets) or along another dim (same channels)."""
        nd = len(out)
        dims = {c.dim for _, _, c in ins if c is not None}
        strides = {c.stride for _, _, c in ins if c is not None}
        if len(dims) != 1 or len(strides) != 1:
            raise Blocked("concatenates channels from different dimensions")
        d, at = dims.pop(), norm_dim(fn._saved_dim, nd)
        if at != d:
            if any(c is None for _, _, c in ins) and out[d] > 1:
                raise Blocked("combines the channels with channels that cannot be pruned")
            return Chan(d, strides.pop())
        sizes = [self.shape(f, nr)[d] if f is not None else None for f, nr, _ in ins]
        unknown = [i for i, s in enumerate(sizes) if s is None]
        if len(unknown) > 1:
            raise Blocked("concatenates several constant tensors")
        if unknown:
            sizes[unknown[0]] = out[d] - sum(s for s in sizes if s is not None)
        self.concats.append((fn, ins, sizes))
        return Chan(d, strides.pop())

    def stack(self, fn, ins, out, d, c0) -> Chan:
        """torch.stack of tensors with the same channels."""
        if any(c is None or c.dim != d for _, _, c in ins):
            raise Blocked("stacks the channels with others")
        s = norm_dim(fn._saved_dim, len(out))
        return Chan(d + (s <= d), c0.stride)

    def split(self, fn, s0, outs, d, c0) -> list:
        """split/chunk: along the channels into equal pieces (tied position by position), or not."""
        at = norm_dim(fn._saved_dim, len(s0))
        if at != d:
            return [c0] * len(outs)
        sizes = [o[d] for o in outs]
        if c0.stride != 1 or len(set(sizes)) != 1:
            raise Blocked("splits the channels into unequal parts")
        self.splits.append((fn, sizes))
        per = sizes[0]
        node = self.node(fn)
        if node is not None:
            tuples = [tuple(p * per + u for p in range(len(sizes))) for u in range(per)]
            self.out.constraints.append(Constraint(node, "out", tuples))
        return [Chan(d)] * len(outs)

    # ---------------------------------------------------------------- outputs and graph changes
