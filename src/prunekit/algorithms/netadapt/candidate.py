"""One NetAdapt candidate: shrink one group, then (as its job says) re-estimate BatchNorm statistics
and/or fine-tune briefly, and score it.

Candidates of an iteration are independent jobs: everything they share travels in one
:class:`IterationInput` (put once per iteration), each job is a (group, channels to remove, steps)
triple, and the randomness of each is seeded from (seed, iteration, group) alone, so results do
not depend on which process runs them or in what order.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from prunekit.algorithms.netadapt.config import NetAdaptConfig
from prunekit.algorithms.plans import carry_metadata
from prunekit.algorithms.selection import lowest
from prunekit.criteria import score_group
from prunekit.errors import PrunekitError
from prunekit.resources.metric import ResourceMetric
from prunekit.structure import ModelStructure, analyze
from prunekit.training import memory_format, seed_everything

CALIBRATE, FINETUNE = "calibrate", "finetune"


@dataclass
class Task:
    """The user's side of NetAdapt: how to train, calibrate and score a network.

    ``finetune(model, iters)`` trains in place for ``iters`` batches; ``evaluate(model)`` scores on
    all the held-out data (higher is better: a float, or a mapping with ``accuracy`` and
    optionally ``loss``); ``score(model)`` the same on a subset for candidates (default:
    ``evaluate``); ``calibration_data(seed)`` yields training input batches for re-estimating
    BatchNorm statistics (adaptive-BN scoring; None: not available).
    """

    finetune: Callable[[nn.Module, int], Any]
    evaluate: Callable[[nn.Module], Any]
    score: Optional[Callable[[nn.Module], Any]] = None
    calibration_data: Optional[Callable[[int], Iterable[torch.Tensor]]] = None

    def scorer(self) -> Callable[[nn.Module], Any]:
        """The candidates' scoring function."""
        return self.score or self.evaluate


@dataclass
class IterationInput:
    """What every candidate of one iteration shares."""

    model: nn.Module
    example_inputs: torch.Tensor
    iteration: int
    target: float
    config: NetAdaptConfig
    metric: ResourceMetric
    task: Task
    resource: float = 0.0
    """The current network's resource (before this iteration)."""
    score: float | None = None
    """The current network's score on the candidates' scoring data (before this iteration)."""
    score_loss: float | None = None
    """The current network's loss on the candidates' scoring data, when the scoring function gives one."""
    structure: Optional[ModelStructure] = None
    """The analysed network (set by :func:`plan_candidates`): candidates in this process copy it
    instead of analysing the network again; it does not travel to other processes."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["structure"] = None  # Torch-Pruning's graph does not pickle; a worker analyses its own copy
        return state


@dataclass(frozen=True)
class CandidateJob:
    """Remove ``remove`` channels from ``group``, then run ``steps`` (calibrate, finetune) and score."""

    group: str
    remove: int
    predicted: float
    steps: tuple[str, ...] = ()


@dataclass
class CandidateResult:
    """Outcome of one candidate; ``model`` is the network (dropped once no longer needed)."""

    group: str
    status: str
    removed: int = 0
    channels: int = 0
    resource: float | None = None
    accuracy: float | None = None
    loss: float | None = None
    steps: tuple[str, ...] = ()
    seconds: float = 0.0
    finetune_s: float = 0.0
    calibrate_s: float = 0.0
    evaluate_s: float = 0.0
    error: str | None = None
    model: nn.Module | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """The history entry (no model)."""
        out = {"group": self.group, "status": self.status, "removed": self.removed, "channels": self.channels,
               "resource": self.resource, "accuracy": self.accuracy, "steps": list(self.steps),
               "seconds": round(self.seconds, 3), "finetune_s": round(self.finetune_s, 3),
               "calibrate_s": round(self.calibrate_s, 3), "evaluate_s": round(self.evaluate_s, 3)}
        if self.loss is not None:
            out["loss"] = self.loss
        if self.error:
            out["error"] = self.error
        return out


def candidate_seed(seed: int, iteration: int, group: str) -> int:
    """A seed that depends only on the run's seed, the iteration and the group."""
    return (seed * 1_000_003 + iteration * 7_919 + zlib.crc32(group.encode())) % (2**31 - 1)


def split_score(value: Any) -> tuple[float, float | None]:
    """(accuracy, loss or None) from what a scoring function returned (a number or a mapping); anything else, or
    a score that is not a finite number, is one error saying what the function must return."""
    accuracy, loss = (value.get("accuracy"), value.get("loss")) if isinstance(value, dict) else (value, None)
    if not _finite_number(accuracy) or not (loss is None or _finite_number(loss)):
        raise PrunekitError(f"evaluate/score must return a finite number (higher is better) or a mapping with "
                            f"'accuracy' (and 'loss'), got {value!r}")
    return float(accuracy), None if loss is None else float(loss)


def _finite_number(value: Any) -> bool:
    if torch.is_tensor(value):
        value = value.item() if value.numel() == 1 else None
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def analyze_copy(model: nn.Module, example_inputs: torch.Tensor, cfg: NetAdaptConfig) -> ModelStructure:
    """The prunable groups of a copy of ``model`` under the run's settings (step, exclusions, attention)."""
    return analyze(copy.deepcopy(model), example_inputs, exclude=cfg.exclude, round_to=cfg.min_channels_step,
                   attention=cfg.attention)


def fewest_removal(structure: ModelStructure, group: str, cost: Callable[[dict[str, int]], float], target: float) -> int | None:
    """The fewest channels (a valid count for the group's step) whose removal brings the network to ``target``;
    None when even the most the group can lose is not enough."""
    counts = structure.removals(group)[1:]
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


def share_removal(structure: ModelStructure, group: str, share: float) -> int | None:
    """``share`` of the group's current channels (at least one step), or None when it can lose none."""
    if structure.removable(group) <= 0:
        return None
    g = structure.group(group)
    wanted = max(int(round(share * g.channels)), max(1, g.round_to))
    k = structure.round_removal(group, wanted)
    return k or None


SHARE_REACH = 2.0
"""--step-mode share on a resource that falls in steps: a cut may grow to this many times its share."""
STEP_MARGIN = 0.05
"""... and grows only when that saves more than this share more per channel removed."""
FAR_REACH = 0.5
"""... and, when nothing that near saves, to at most this share of the group's channels in one cut."""
ALIGNMENTS = (32, 16, 8, 4)
"""Widths tried when every try is a measurement: the fewest channels that land on a multiple of each."""


def stepwise_removal(structure: ModelStructure, group: str, k: int, cost: Callable[[dict[str, int]], float],
                     current: float, every_count: bool) -> tuple[int | None, float]:
    """A share cut (``k`` channels) on a resource that falls in steps as a group narrows, and its resource.

    Runtimes compute channels in blocks: ONNX Runtime's int8 convolutions here cost less at 16 channels
    than at 12 (BENCHMARKS.md, issue 16), so a cut of exactly the share can save nothing while a few
    more channels save a step. Among the counts from ``k`` to ``SHARE_REACH`` times ``k``, the one that
    saves the most per channel removed is taken (``k`` itself unless another saves over ``STEP_MARGIN``
    more per channel); when none of them saves anything, the fewest larger count that does, up to
    ``FAR_REACH`` of the group (a larger cut in one step cost accuracy it did not win back). Returns
    (None, resource) when no cut of the group saves anything. ``every_count``: try every count (a
    table's arithmetic); otherwise (each try is a measurement) ``k`` alone when it saves, else the
    fewest channels that land on a multiple of each of ``ALIGNMENTS``, near, then far."""
    width = structure.group(group).channels
    resource = {k: cost({group: k})}
    if not every_count and resource[k] < current:
        return k, resource[k]
    counts = [c for c in structure.removals(group)[1:] if c > k]
    near = [c for c in counts if c <= SHARE_REACH * k]
    far = [c for c in counts if SHARE_REACH * k < c <= width * FAR_REACH]
    if not every_count:
        near, far = (sorted({c for a in ALIGNMENTS for c in _first_aligned(part, width, a)}) for part in (near, far))
    resource.update({c: cost({group: c}) for c in near})
    rate = {c: (current - r) / c for c, r in resource.items()}
    best = max(rate, key=lambda c: (rate[c], -c))
    if rate[best] > 0:
        if rate[k] > 0 and rate[best] <= rate[k] * (1 + STEP_MARGIN):
            best = k
        return best, resource[best]
    for c in far:
        r = cost({group: c})
        if r < current:
            return c, r
    return None, resource[k]


def _first_aligned(counts: list[int], width: int, alignment: int) -> list[int]:
    """The fewest of ``counts`` (ascending) that leaves a width that is a multiple of ``alignment`` (or none)."""
    return next(([c] for c in counts if (width - c) % alignment == 0), [])


def plan_candidates(shared: IterationInput) -> tuple[list[CandidateJob], list[CandidateResult]]:
    """The jobs of an iteration (one per group that can make its cut) and the groups skipped."""
    cfg = shared.config
    structure = analyze_copy(shared.model, shared.example_inputs, cfg)
    cost = shared.metric.what_if(structure, shared.example_inputs)
    shared.structure = structure
    stepwise = getattr(shared.metric, "stepwise", False)
    jobs, skipped = [], []
    for g in structure.groups:
        predicted = None
        if cfg.step_mode == "share":
            k = share_removal(structure, g.name, cfg.group_share)
            why = "its width is already at the minimum"
            if k is not None and stepwise:
                k, predicted = stepwise_removal(structure, g.name, k, cost, shared.resource,
                                                getattr(shared.metric, "cheap_what_if", True))
                why = f"no cut of it lowers the {shared.metric.name}"
        else:
            k = fewest_removal(structure, g.name, cost, shared.target)
            why = "cannot meet the target by pruning this group alone"
        if k is None:
            skipped.append(CandidateResult(g.name, "skipped", channels=g.channels, error=why))
        else:
            jobs.append(CandidateJob(g.name, k, cost({g.name: k}) if predicted is None else predicted))
    return jobs, skipped


def build_candidate(shared: IterationInput, *jobs: CandidateJob) -> tuple[nn.Module, ModelStructure]:
    """The current network with every job's channels removed (the lowest by the criterion in each group)."""
    cfg = shared.config
    if shared.structure is not None:
        structure = copy.deepcopy(shared.structure)
    else:
        structure = analyze_copy(shared.model, shared.example_inputs, cfg)
    cuts = {}
    for job in jobs:  # scored before any cut: each group's choice is what its own candidate removed
        scores = score_group(structure, job.group, cfg.criterion, seed=cfg.seed)
        if scores is None:  # the criterion cannot rank this group: remove its first channels
            scores = torch.zeros(structure.group(job.group).channels)
        cuts[job.group] = lowest(scores, job.remove)
    for group, channels in cuts.items():
        structure.prune(group, channels)
    return carry_metadata(shared.model, structure.model, structure, shared.example_inputs), structure


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has BatchNorm layers whose statistics adaptive-BN scoring can re-estimate."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in model.modules())


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor], count: int) -> None:
    """Re-estimate every BatchNorm layer's running statistics from ``count`` batches (forward passes only;
    weights untouched): adaptive BatchNorm (Li et al., EagleEye, ECCV 2020)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches seen
    was_training = model.training
    feed = itertools.islice(batches, count)
    first = next(feed, None)
    try:
        if first is not None:
            with memory_format(model, first) as fmt:
                model.train()
                for x in itertools.chain([first], feed):
                    model(x.to(memory_format=fmt) if x.dim() == 4 else x)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)


def adapt(shared: IterationInput, model: nn.Module, steps: tuple[str, ...], group: str) -> tuple[float, float]:
    """Run a candidate's steps on ``model`` in place; returns (calibration, fine-tuning) seconds."""
    cfg, task = shared.config, shared.task
    calibrate_s = finetune_s = 0.0
    if CALIBRATE in steps and task.calibration_data is not None:
        t0 = time.perf_counter()
        # every candidate of an iteration sees the same batches: a fair comparison
        recalibrate_batchnorm(model, task.calibration_data(candidate_seed(cfg.seed, shared.iteration, "")),
                              cfg.bn_batches)
        calibrate_s = time.perf_counter() - t0
    if FINETUNE in steps and cfg.short_term_iters:
        t0 = time.perf_counter()
        seed_everything(candidate_seed(cfg.seed, shared.iteration, group))
        task.finetune(model, cfg.short_term_iters)
        finetune_s = time.perf_counter() - t0
    model.eval()
    return calibrate_s, finetune_s


def run_candidate(shared: IterationInput, job: CandidateJob) -> CandidateResult:
    """Build, adapt (calibrate / fine-tune) and score one candidate (errors come back as a failed result)."""
    t0 = time.perf_counter()
    try:
        model, structure = build_candidate(shared, job)
        resource = shared.metric.of_model(model, shared.example_inputs)
        calibrate_s, finetune_s = adapt(shared, model, job.steps, job.group)
        t_eval = time.perf_counter()
        accuracy, loss = split_score(shared.task.scorer()(model))
        t_end = time.perf_counter()
        return CandidateResult(job.group, "ok", job.remove, structure.group(job.group).channels, resource, accuracy,
                               loss, job.steps, t_end - t0, finetune_s=finetune_s, calibrate_s=calibrate_s,
                               evaluate_s=t_end - t_eval, model=model.cpu())
    except Exception as err:  # a failed candidate is recorded; the iteration goes on with the others
        return CandidateResult(job.group, "failed", job.remove, steps=job.steps, seconds=time.perf_counter() - t0,
                               error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")
