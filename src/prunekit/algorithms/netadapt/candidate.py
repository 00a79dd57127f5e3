"""One NetAdapt candidate: shrink one group just enough to meet the target, fine-tune briefly, score.

Candidates of an iteration are independent jobs: everything they share travels in one
:class:`IterationInput` (put once per iteration), each job is a (group, channels to remove)
pair, and the randomness of each is seeded from (seed, iteration, group) alone, so results do not
depend on which process runs them or in what order.
"""

from __future__ import annotations

import copy
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from prunekit.algorithms.plans import carry_metadata
from prunekit.algorithms.selection import allowed_removal, lowest
from prunekit.algorithms.netadapt.config import NetAdaptConfig
from prunekit.criteria import score_group
from prunekit.resources.metric import ResourceMetric
from prunekit.structure import ModelStructure, analyze
from prunekit.training import seed_everything


@dataclass
class IterationInput:
    """What every candidate of one iteration shares."""

    model: nn.Module
    example_inputs: torch.Tensor
    iteration: int
    target: float
    config: NetAdaptConfig
    metric: ResourceMetric
    finetune: Callable[[nn.Module, int], Any]
    evaluate: Callable[[nn.Module], float]
    fault: Optional[Callable[["CandidateJob"], None]] = None
    """Test hook: called at the start of a candidate (fault-injection tests make it fail)."""
    structure: Optional[ModelStructure] = None
    """The analysed network (set by :func:`plan_candidates`): candidates in this process copy it
    instead of analysing the network again; it does not travel to other processes."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["structure"] = None  # Torch-Pruning's graph does not pickle; a worker analyses its own copy
        return state


@dataclass(frozen=True)
class CandidateJob:
    """Remove ``remove`` channels from ``group`` (the fewest that meet the iteration's target)."""

    group: str
    remove: int
    predicted: float


@dataclass
class CandidateResult:
    """Outcome of one candidate; ``model`` is the fine-tuned network (dropped once no longer needed)."""

    group: str
    status: str
    removed: int = 0
    channels: int = 0
    resource: float | None = None
    accuracy: float | None = None
    seconds: float = 0.0
    finetune_s: float = 0.0
    evaluate_s: float = 0.0
    error: str | None = None
    model: nn.Module | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """The history entry (no model)."""
        out = {"group": self.group, "status": self.status, "removed": self.removed, "channels": self.channels,
               "resource": self.resource, "accuracy": self.accuracy, "seconds": round(self.seconds, 3),
               "finetune_s": round(self.finetune_s, 3), "evaluate_s": round(self.evaluate_s, 3)}
        if self.error:
            out["error"] = self.error
        return out


def candidate_seed(seed: int, iteration: int, group: str) -> int:
    """A seed that depends only on the run's seed, the iteration and the group."""
    return (seed * 1_000_003 + iteration * 7_919 + zlib.crc32(group.encode())) % (2**31 - 1)


def fewest_removal(structure: ModelStructure, group: str, cost: Callable[[dict[str, int]], float], target: float) -> int | None:
    """The fewest channels (a valid count for the group's step) whose removal brings the network to ``target``;
    None when even the most the group can lose is not enough."""
    most = structure.removable(group)
    counts = sorted({allowed_removal(structure, group, k) for k in range(1, most + 1)} - {0})
    if not counts or cost({group: counts[-1]}) > target:
        return None
    lo, hi = 0, len(counts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cost({group: counts[mid]}) <= target:
            hi = mid
        else:
            lo = mid + 1
    return counts[lo]


def plan_candidates(shared: IterationInput) -> tuple[list[CandidateJob], list[CandidateResult]]:
    """The jobs of an iteration (one per group that can meet the target) and the groups skipped."""
    cfg = shared.config
    structure = analyze(copy.deepcopy(shared.model), shared.example_inputs, exclude=cfg.exclude,
                        round_to=cfg.min_channels_step)
    cost = shared.metric.what_if(structure, shared.example_inputs)
    shared.structure = structure
    jobs, skipped = [], []
    for g in structure.groups:
        k = fewest_removal(structure, g.name, cost, shared.target)
        if k is None:
            skipped.append(CandidateResult(g.name, "skipped", channels=g.channels,
                                           error="cannot meet the target by pruning this group alone"))
        else:
            jobs.append(CandidateJob(g.name, k, cost({g.name: k})))
    return jobs, skipped


def run_candidate(shared: IterationInput, job: CandidateJob) -> CandidateResult:
    """Build, fine-tune and score one candidate (errors come back as a failed result)."""
    t0 = time.perf_counter()
    try:
        if shared.fault is not None:
            shared.fault(job)
        cfg = shared.config
        if shared.structure is not None:
            structure = copy.deepcopy(shared.structure)
            model = structure.model
        else:
            model = copy.deepcopy(shared.model)
            structure = analyze(model, shared.example_inputs, exclude=cfg.exclude, round_to=cfg.min_channels_step)
        scores = score_group(structure, job.group, cfg.criterion, seed=cfg.seed)
        if scores is None:  # the criterion cannot rank this group: remove its first channels
            scores = torch.zeros(structure.group(job.group).channels)
        structure.prune(job.group, lowest(scores, job.remove))
        model = carry_metadata(shared.model, model, structure, shared.example_inputs)
        resource = shared.metric.of_model(model, shared.example_inputs)
        seed_everything(candidate_seed(cfg.seed, shared.iteration, job.group))
        t_train = time.perf_counter()
        if cfg.short_term_iters:
            shared.finetune(model, cfg.short_term_iters)
        model.eval()
        t_eval = time.perf_counter()
        accuracy = float(shared.evaluate(model))
        t_end = time.perf_counter()
        return CandidateResult(job.group, "ok", job.remove, structure.group(job.group).channels, resource, accuracy,
                               t_end - t0, finetune_s=t_eval - t_train, evaluate_s=t_end - t_eval, model=model.cpu())
    except Exception as err:  # a failed candidate is recorded; the iteration goes on with the others
        return CandidateResult(job.group, "failed", job.remove, seconds=time.perf_counter() - t0,
                               error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")


def best_of(results: list[CandidateResult]) -> CandidateResult | None:
    """The highest-scoring successful candidate; ties go to the lower resource, then the group name."""
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        return None
    return min(ok, key=lambda r: (-r.accuracy, r.resource, r.group))
