"""Index mappings that prunekit sets on the dependency graph's edges.

A mapping takes the positions reached on one side of an operation, as ``(position, root
position)`` pairs, and returns the positions on the other side (see tp_backend.Graph.map_edge).
These read the current sizes when they are called, so they stay right as channels are removed.
"""

from __future__ import annotations

from prunekit.structure.tp_backend import concat_sizes, split_sizes


def _offsets(sizes: list[int]) -> list[int]:
    out = [0]
    for s in sizes:
        out.append(out[-1] + s)
    return out


class ConcatMapping:
    """torch.cat along the channels: input ``arg`` sits at an offset in the output.

    ``op`` is the graph's concat operation, whose sizes pruning keeps up to date.
    """

    def __init__(self, op, arg: int, reverse: bool) -> None:
        self.op, self.arg, self.reverse = op, arg, reverse

    def __call__(self, idxs: list) -> list:
        lo, hi = _offsets(concat_sizes(self.op))[self.arg : self.arg + 2]
        if self.reverse:  # output -> this input
            return [(i - lo, r) for i, r in idxs if lo <= i < hi]
        return [(i + lo, r) for i, r in idxs]


class SplitMapping:
    """torch.split/chunk along the channels: output ``piece`` is a range of the input.

    ``op`` is the graph's split operation, whose sizes pruning keeps up to date.
    """

    def __init__(self, op, piece: int, reverse: bool) -> None:
        self.op, self.piece, self.reverse = op, piece, reverse

    def __call__(self, idxs: list) -> list:
        lo, hi = _offsets(split_sizes(self.op))[self.piece : self.piece + 2]
        if self.reverse:  # piece -> input
            return [(i + lo, r) for i, r in idxs]
        return [(i - lo, r) for i, r in idxs if lo <= i < hi]


class ShuffleState:
    """Current width of a channel shuffle's input (prunekit updates it after each prune)."""

    def __init__(self, width: int, groups: int) -> None:
        self.width, self.groups = width, groups


class ShuffleMapping:
    """Channel shuffle with ``g`` groups: input ``a*n + b`` goes to output ``b*g + a`` (n = C/g)."""

    def __init__(self, state: ShuffleState, reverse: bool) -> None:
        self.state, self.reverse = state, reverse

    def __call__(self, idxs: list) -> list:
        g = self.state.groups
        n = self.state.width // g
        if self.reverse:  # output j = b*g + a -> input a*n + b
            return [((i % g) * n + i // g, r) for i, r in idxs]
        return [((i % n) * g + i // n, r) for i, r in idxs]


class FlattenMapping:
    """Channels flattened with the dims after them: channel ``c`` becomes ``[c*q, (c+1)*q)``."""

    def __init__(self, stride: int, reverse: bool) -> None:
        self.stride, self.reverse = stride, reverse

    def __call__(self, idxs: list) -> list:
        q = self.stride
        if self.reverse:
            seen: dict = {}
            for i, r in idxs:
                seen.setdefault((i // q, r), None)
            return list(seen)
        return [(k, r) for i, r in idxs for k in range(i * q, (i + 1) * q)]
