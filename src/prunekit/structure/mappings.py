"""Index mappings that prunekit sets on Torch-Pruning's dependency edges.

TP maps channel indices across an operation with callables on its ``Dependency.index_mapping``
(lists of ``_HybridIndex(idx, root_idx)`` in, lists out).  These read the current sizes when they
are called, so they stay right as channels are removed.
"""

from __future__ import annotations

from torch_pruning._helpers import _HybridIndex


def _offsets(sizes: list[int]) -> list[int]:
    out = [0]
    for s in sizes:
        out.append(out[-1] + s)
    return out


class ConcatMapping:
    """torch.cat along the channels: input ``arg`` sits at an offset in the output.

    ``op`` is TP's concat op, whose ``concat_sizes`` TP's ConcatPruner keeps up to date.
    """

    def __init__(self, op, arg: int, reverse: bool) -> None:
        self.op, self.arg, self.reverse = op, arg, reverse

    def __call__(self, idxs: list) -> list:
        lo, hi = _offsets(self.op.concat_sizes)[self.arg : self.arg + 2]
        if self.reverse:  # output -> this input
            return [_HybridIndex(i.idx - lo, i.root_idx) for i in idxs if lo <= i.idx < hi]
        return [_HybridIndex(i.idx + lo, i.root_idx) for i in idxs]


class SplitMapping:
    """torch.split/chunk along the channels: output ``piece`` is a range of the input.

    ``op`` is TP's split op, whose ``split_sizes`` TP's SplitPruner keeps up to date.
    """

    def __init__(self, op, piece: int, reverse: bool) -> None:
        self.op, self.piece, self.reverse = op, piece, reverse

    def __call__(self, idxs: list) -> list:
        lo, hi = _offsets(self.op.split_sizes)[self.piece : self.piece + 2]
        if self.reverse:  # piece -> input
            return [_HybridIndex(i.idx + lo, i.root_idx) for i in idxs]
        return [_HybridIndex(i.idx - lo, i.root_idx) for i in idxs if lo <= i.idx < hi]


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
            return [_HybridIndex((i.idx % g) * n + i.idx // g, i.root_idx) for i in idxs]
        return [_HybridIndex((i.idx % n) * g + i.idx // n, i.root_idx) for i in idxs]


class FlattenMapping:
    """Channels flattened with the dims after them: channel ``c`` becomes ``[c*q, (c+1)*q)``."""

    def __init__(self, stride: int, reverse: bool) -> None:
        self.stride, self.reverse = stride, reverse

    def __call__(self, idxs: list) -> list:
        q = self.stride
        if self.reverse:
            seen: dict = {}
            for i in idxs:
                seen.setdefault((i.idx // q, i.root_idx), None)
            return [_HybridIndex(c, r) for c, r in seen]
        return [_HybridIndex(k, i.root_idx) for i in idxs for k in range(i.idx * q, (i.idx + 1) * q)]
