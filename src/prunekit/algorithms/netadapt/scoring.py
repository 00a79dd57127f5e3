"""How an iteration's candidates are scored: a registry of scoring modes.

- ``finetune``: every candidate is fine-tuned for ``short_term_iters`` batches, then scored
  (the paper's short-term fine-tuning; the most expensive).
- ``adaptive-bn``: every candidate's BatchNorm statistics are re-estimated on ``bn_batches``
  training batches (forward passes only), then scored (EagleEye, Li et al. ECCV 2020); only the
  kept network is fine-tuned.
- ``halving``: every candidate is scored as in ``adaptive-bn``, then the best ``halving_keep``
  are fine-tuned and scored again; the kept one comes from those.

A mode is a function ``(shared, planned, run) -> ScoredIteration`` registered with
:func:`register_scoring_mode`; ``run(jobs)`` evaluates jobs through the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from prunekit.algorithms.netadapt.candidate import CALIBRATE, FINETUNE, CandidateJob, CandidateResult, IterationInput
from prunekit.algorithms.netadapt.ranking import rank
from prunekit.algorithms.netadapt.modes import SCORING_MODES, register_scoring_mode

RunJobs = Callable[[list[CandidateJob]], list[CandidateResult]]


@dataclass
class ScoredIteration:
    """An iteration's candidates as scored, and whether the kept one still needs its fine-tuning."""

    results: list[CandidateResult]
    kept_is_tuned: bool


NEEDS_BATCHNORM = {"adaptive-bn", "halving"}
"""Modes that fall back to ``finetune`` for networks without BatchNorm (nothing to re-estimate)."""


def _with_steps(jobs: list[CandidateJob], *steps: str) -> list[CandidateJob]:
    return [replace(j, steps=tuple(steps)) for j in jobs]


@register_scoring_mode("finetune")
def finetune_scoring(shared: IterationInput, planned: list[CandidateJob], run: RunJobs) -> ScoredIteration:
    """Short-term fine-tuning of every candidate, then its score."""
    return ScoredIteration(run(_with_steps(planned, FINETUNE)), kept_is_tuned=True)


@register_scoring_mode("adaptive-bn")
def adaptive_bn_scoring(shared: IterationInput, planned: list[CandidateJob], run: RunJobs) -> ScoredIteration:
    """BatchNorm statistics re-estimated, then the score; the kept network is fine-tuned afterwards."""
    return ScoredIteration(run(_with_steps(planned, CALIBRATE)), kept_is_tuned=False)


@register_scoring_mode("halving")
def halving_scoring(shared: IterationInput, planned: list[CandidateJob], run: RunJobs) -> ScoredIteration:
    """Adaptive-BN scores for all; the best ``halving_keep`` fine-tuned and scored again."""
    first = run(_with_steps(planned, CALIBRATE))
    ranked = rank(first, shared)
    keep = {r.group for r in ranked[: shared.config.halving_keep]}
    finalists = run(_with_steps([j for j in planned if j.group in keep], CALIBRATE, FINETUNE))
    by_group = {r.group: r for r in first}
    for r in first:
        r.model = None
        if r.group not in keep and r.status == "ok":
            r.status = "screened"
    by_group.update({r.group: r for r in finalists})
    return ScoredIteration(sorted(by_group.values(), key=lambda r: r.group), kept_is_tuned=True)
