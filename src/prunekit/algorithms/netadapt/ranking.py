"""Which candidate an iteration keeps: a registry of ranking rules (lower key is better).

- ``accuracy``: the highest score (the paper's rule); ties go to the lower loss, then the lower
  resource, then the group name.
- ``efficiency``: the least lost per share of the resource saved, relative to the network before
  the iteration (candidates that save more are not penalised for overshooting the target). What is
  lost is the rise in loss on the scoring data when the scoring function reports a loss (a finer
  measure than accuracy on a few samples), the fall in score otherwise; a fall in loss counts as
  nothing lost (ties go to the larger saving), and a candidate that saves nothing comes last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from prunekit.registry import Registry

if TYPE_CHECKING:
    from prunekit.algorithms.netadapt.candidate import CandidateResult, IterationInput

RANKING_RULES: Registry[Callable[["CandidateResult", "IterationInput"], tuple[Any, ...]]] = Registry("selection rule")
register_selection_rule = RANKING_RULES.register


def list_selection_rules() -> list[str]:
    """Registered selection rules."""
    return RANKING_RULES.names()


def _tie_break(r: "CandidateResult") -> tuple[Any, ...]:
    return (r.loss if r.loss is not None else 0.0, r.resource, r.group)


@register_selection_rule("accuracy")
def by_accuracy(r: "CandidateResult", shared: "IterationInput") -> tuple[Any, ...]:
    """Highest score first."""
    return (-r.accuracy, *_tie_break(r))


@register_selection_rule("efficiency")
def by_efficiency(r: "CandidateResult", shared: "IterationInput") -> tuple[Any, ...]:
    """Least score lost per share of the resource saved. A candidate that saves nothing comes last; one that
    loses nothing (its score even rose: noise on a small scoring set) counts as losing nothing, and among
    those the one that saves the most comes first (a gain divided by a tiny saving would otherwise rank a
    cut that saves almost nothing first)."""
    saved = (shared.resource - r.resource) / max(shared.resource, 1e-12)
    if saved <= 0:
        return (1, 0.0, r.resource, r.group)
    if r.loss is not None and shared.score_loss is not None:
        lost = r.loss - shared.score_loss
    else:
        lost = (shared.score if shared.score is not None else r.accuracy) - r.accuracy
    return (0, max(lost, 0.0) / saved, -saved, -r.accuracy, r.group)


def rank(results: list["CandidateResult"], shared: "IterationInput") -> list["CandidateResult"]:
    """The successful candidates, best first, by the configured rule."""
    key = RANKING_RULES.get(shared.config.selection)
    return sorted((r for r in results if r.status == "ok"), key=lambda r: key(r, shared))
