"""Choosing which channels to remove: per group (local), by global rank, and to a resource budget."""

from __future__ import annotations

from typing import Callable

import torch

from prunekit.structure import ModelStructure


def allowed_removal(structure: ModelStructure, group: str, wanted: int) -> int:
    """The largest count <= ``wanted`` that keeps the group's width a multiple of its step and >= one step."""
    return structure.allowed_removal(group, wanted)


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Positions of the ``count`` lowest scores (ties broken by position, for determinism)."""
    if count <= 0:
        return []
    order = sorted(range(len(scores)), key=lambda i: (float(scores[i]), i))
    return sorted(order[:count])


def local_counts(structure: ModelStructure, scores: dict[str, torch.Tensor], ratio: float) -> dict[str, int]:
    """Remove ``ratio`` of every scored group's channels: each keeps floor((1 - ratio) x width) (Torch-Pruning's
    convention), rounded to the group's step."""
    out = {}
    for name in scores:
        width = structure.group(name).channels
        out[name] = allowed_removal(structure, name, width - int((1 - ratio) * width + 1e-9))
    return out


def global_order(scores: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
    """All (group, channel) pairs, least important first, by score normalised to each group's mean."""
    entries = []
    for name, s in scores.items():
        norm = s / (s.abs().mean() + 1e-12)
        entries += [(float(v), name, i) for i, v in enumerate(norm)]
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(name, i) for _, name, i in entries]


def global_counts(structure: ModelStructure, order: list[tuple[str, int]], total: int) -> dict[str, int]:
    """Counts per group when the first ``total`` channels of the global order are removed (within each group's limit)."""
    counts: dict[str, int] = {}
    caps = {name: structure.removable(name) for name, _ in order}
    taken = 0
    for name, _ in order:
        if taken >= total:
            break
        if counts.get(name, 0) < caps[name]:
            counts[name] = counts.get(name, 0) + 1
            taken += 1
    return {name: allowed_removal(structure, name, k) for name, k in counts.items()}


def search_budget(fits: Callable[[int], bool], high: int) -> int:
    """Smallest n in [0, high] with ``fits(n)`` (``fits`` monotone, ``fits(high)`` true): a bisection."""
    lo, hi = 0, high
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
