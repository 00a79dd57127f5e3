"""PruningPlan: which channels of each group a pruned model kept, in the original numbering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunekit.structure.datatypes import StructureError

PLAN_VERSION = 1


@dataclass
class GroupPlan:
    """One group of a plan: its original width (in units) and the sorted original units kept."""

    original: int
    kept: list[int]


@dataclass
class PruningPlan:
    """Everything pruned since the original model, group by group; JSON-ready via :meth:`to_dict`.

    Group names and unit numbers are those of :func:`prunekit.structure.analyze` on the original
    model with the same ``exclude`` and ``attention`` setting (stored here, since both change which
    units a group has).  ``round_to`` is stored for information and for continuing to prune.
    Groups that were never pruned are absent.
    """

    groups: dict[str, GroupPlan] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    round_to: int = 1
    attention: str = "head_dims"

    def kept(self, name: str) -> list[int] | None:
        """Original unit numbers kept in group ``name``, or None if the plan never pruned it."""
        g = self.groups.get(name)
        return list(g.kept) if g is not None else None

    def removed_count(self) -> int:
        """Total number of units removed over all groups."""
        return sum(g.original - len(g.kept) for g in self.groups.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (inverse: :meth:`from_dict`)."""
        return {
            "version": PLAN_VERSION,
            "round_to": self.round_to,
            "exclude": list(self.exclude),
            "attention": self.attention,
            "groups": {n: {"original": g.original, "kept": list(g.kept)} for n, g in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PruningPlan":
        """Read a plan written by :meth:`to_dict`; raises StructureError if it is malformed."""
        try:
            if int(d.get("version", PLAN_VERSION)) > PLAN_VERSION:
                raise StructureError(f"pruning plan version {d['version']} is newer than this prunekit")
            groups = {}
            for name, g in dict(d.get("groups", {})).items():
                original, kept = int(g["original"]), sorted(int(k) for k in g["kept"])
                if len(set(kept)) != len(kept) or (kept and (kept[0] < 0 or kept[-1] >= original)):
                    raise StructureError(f"pruning plan: group {name!r} keeps invalid channels")
                groups[str(name)] = GroupPlan(original, kept)
            attention = str(d.get("attention", "head_dims"))
            if attention not in ("head_dims", "heads", "none"):
                raise StructureError(f"pruning plan: unknown attention setting {attention!r}")
            return cls(groups, tuple(str(x) for x in d.get("exclude", ())), int(d.get("round_to", 1)), attention)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise StructureError(f"malformed pruning plan: {type(err).__name__}: {err}") from None
