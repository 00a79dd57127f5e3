"""Table entries between measured widths, by interpolation instead of a new timing.

A table is built at widths that are multiples of a step (``build_lut``); NetAdapt's candidates
then ask for widths in between (a 64-channel layer cut to 54). Timing such a layer on demand, in
the middle of a search, reads it in whatever state the machine is in then, while its neighbours
were timed together when the table was built: on a shared machine those on-demand entries came
out consistently slower or faster than the built ones, and a search comparing cuts by them
compared the moments they were timed in. So a width that lies between widths the table holds is
priced by linear interpolation along each channel count the layer has (input and output channels
of a convolution or linear layer: bilinear), from entries of the same layer kind, settings and
spatial size. Widths outside the measured range are still timed on demand.
"""

from __future__ import annotations

import itertools
import re
from typing import Callable

from torch import nn

from prunekit.latency.sites import _CONV, resizable, signature_of

Shape = tuple[int, ...]
_SENTINELS = (999983, 999979)
"""Channel counts no real layer has: a signature made with them is a template of its layer's entries."""
NEAREST = 3
"""Measured widths tried on each side of a missing one (nearest first) when looking for a full rectangle."""


def channel_variables(module: nn.Module, x: Shape, y: Shape) -> tuple[tuple[int, ...], Callable] | None:
    """The channel counts that set ``module``'s entry (its input and output channels, or one count where they
    are tied), and a function from other counts to the input and output shapes; None for other layers."""
    if not resizable(module) or len(x) < 2:
        return None
    if isinstance(module, nn.Linear):
        return (x[-1], y[-1]), lambda a, b: (x[:-1] + (a,), y[:-1] + (b,))
    depthwise = isinstance(module, _CONV) and module.groups > 1 and module.groups == module.in_channels
    if isinstance(module, _CONV) and not depthwise:
        return (x[1], y[1]), lambda a, b: (_with(x, 1, a), _with(y, 1, b))
    tied = len(y) >= 2 and y[1] == x[1]
    return (x[1],), lambda a: (_with(x, 1, a), _with(y, 1, a) if tied else y)


def _with(shape: Shape, dim: int, value: int) -> Shape:
    out = list(shape)
    out[dim] = value
    return tuple(out)


class Interpolator:
    """Prices missing entries of ``entries`` (a table's dict, read as it grows) between measured widths."""

    def __init__(self, entries: dict[str, float]) -> None:
        self.entries = entries
        self._index: dict[str, tuple[re.Pattern, int, dict[tuple[int, ...], str]]] = {}
        self._memo: dict[str, float | None] = {}
        self._memo_size = 0
        self.count = 0
        """Entries priced by interpolation so far."""

    def estimate(self, module: nn.Module, x: Shape, y: Shape) -> float | None:
        """Milliseconds of ``module`` on input ``x`` (output ``y``) interpolated from the table, or None."""
        found = channel_variables(module, x, y)
        if found is None:
            return None
        if self._memo_size != len(self.entries):  # the table grew: earlier answers may have changed
            self._memo, self._memo_size = {}, len(self.entries)
        key = signature_of(module, x, y)
        if key not in self._memo:
            values, shapes = found
            template = signature_of(module, *shapes(*_SENTINELS[:len(values)]))
            points = {v: self.entries[k] for v, k in self._keys(template, len(values)).items()}
            self._memo[key] = _linear(points, values) if len(values) == 1 else _bilinear(points, values)
        ms = self._memo[key]
        if ms is not None:
            self.count += 1
        return ms

    def _keys(self, template: str, n: int) -> dict[tuple[int, ...], str]:
        """The table's keys of this layer's template, by their channel counts (entries added since the last call
        are read: a table only grows, in insertion order)."""
        if template not in self._index:
            pattern = re.escape(template)
            for i, sentinel in enumerate(_SENTINELS[:n]):
                pattern = pattern.replace(str(sentinel), f"(?P<v{i}>\\d+)", 1).replace(str(sentinel), f"(?P=v{i})")
            self._index[template] = (re.compile(pattern + "$"), 0, {})
        regex, seen, keys = self._index[template]
        for key in itertools.islice(self.entries, seen, None):
            m = regex.match(key)
            if m:
                keys[tuple(int(m.group(f"v{i}")) for i in range(n))] = key
        self._index[template] = (regex, len(self.entries), keys)
        return keys


def _around(values: set[int], v: int) -> tuple[list[int], list[int]]:
    """Measured values at or below ``v`` and at or above it, nearest first."""
    below = sorted((u for u in values if u <= v), reverse=True)[:NEAREST]
    above = sorted(u for u in values if u >= v)[:NEAREST]
    return below, above


def _weight(lo: int, hi: int, v: int) -> float:
    return 0.0 if hi == lo else (v - lo) / (hi - lo)


def _linear(points: dict[tuple[int, ...], float], values: tuple[int, ...]) -> float | None:
    (v,) = values
    below, above = _around({p[0] for p in points}, v)
    if not below or not above:
        return None
    lo, hi = below[0], above[0]
    t = _weight(lo, hi, v)
    return (1 - t) * points[(lo,)] + t * points[(hi,)]


def _bilinear(points: dict[tuple[int, ...], float], values: tuple[int, ...]) -> float | None:
    a, b = values
    a_below, a_above = _around({p[0] for p in points}, a)
    b_below, b_above = _around({p[1] for p in points}, b)
    for a_lo in a_below:
        for a_hi in a_above:
            for b_lo in b_below:
                for b_hi in b_above:
                    corners = [(a_lo, b_lo), (a_lo, b_hi), (a_hi, b_lo), (a_hi, b_hi)]
                    if all(c in points for c in corners):
                        s, t = _weight(a_lo, a_hi, a), _weight(b_lo, b_hi, b)
                        return ((1 - s) * (1 - t) * points[corners[0]] + (1 - s) * t * points[corners[1]]
                                + s * (1 - t) * points[corners[2]] + s * t * points[corners[3]])
    return None
