"""Which channel counts a group may lose: the one definition every other module asks.

A group of ``channels`` units with step ``step`` (``round_to`` in units, see
:attr:`ChannelGroup.round_to`) may lose ``k`` units when what is left is a multiple of the step
and at least one step; losing nothing is always allowed.  A group whose width is not a multiple
drops to one at its first prune; a group narrower than one step cannot be pruned.
"""

from __future__ import annotations

from math import gcd


def unit_step(round_to: int, per_unit: int) -> int:
    """The step in units that keeps every member's width a multiple of ``round_to`` channels
    when one unit spans ``per_unit`` channels of the widest member."""
    return round_to // gcd(round_to, per_unit)


def legal_removals(channels: int, step: int) -> list[int]:
    """Every count of units that may be removed, ascending, starting with 0."""
    return [0] + sorted(channels - w for w in range(step, channels, step))


def is_legal(channels: int, step: int, k: int) -> bool:
    """True when removing ``k`` of ``channels`` units leaves a valid width."""
    left = channels - k
    return k == 0 or (0 < k and left >= step and left % step == 0)


def most_removable(channels: int, step: int) -> int:
    """The largest legal removal (0 if the group cannot be pruned)."""
    return max(0, channels - step) if channels >= step else 0


def round_up(channels: int, step: int, wanted: int) -> int:
    """The smallest legal removal >= ``wanted`` (the largest legal one if none is)."""
    if wanted <= 0:
        return 0
    target = max(step, (channels - wanted) // step * step)
    return channels - target if target < channels else 0


def round_down(channels: int, step: int, wanted: int) -> int:
    """The largest legal removal <= ``wanted`` (0 if none is)."""
    wanted = min(int(wanted), most_removable(channels, step))
    if wanted <= 0:
        return 0
    width = -(-(channels - wanted) // step) * step  # the kept width, rounded up to a multiple of the step
    return max(0, channels - width)
