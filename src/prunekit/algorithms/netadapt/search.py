"""The NetAdapt loop (Yang et al., ECCV 2018): lower the target, try every group, keep the best, repeat.

This module does no file I/O and no printing: it reports through :class:`NetAdaptEvents` and
returns its records; ``prunekit.pipeline.netadapt_step`` owns the working folder and the log.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import nn

from prunekit.algorithms.netadapt.candidate import (
    CALIBRATE, FINETUNE, CandidateJob, CandidateResult, IterationInput, Task, adapt, analyze_copy, build_candidate,
    candidate_seed, has_batchnorm,
    plan_candidates, run_candidate, split_score,
)
from prunekit.algorithms.netadapt.config import NetAdaptConfig, iteration_target
from prunekit.algorithms.netadapt.events import NetAdaptEvents
from prunekit.algorithms.netadapt.ranking import rank
from prunekit.algorithms.netadapt.rounding import round_widths
from prunekit.algorithms.netadapt.scoring import NEEDS_BATCHNORM, SCORING_MODES
from prunekit.algorithms.oneshot import unscorable
from prunekit.criteria import get_criterion, needs_gradients, score_group
from prunekit.errors import PrunekitError
from prunekit.io import attach_input_shape
from prunekit.reports import human
from prunekit.resources import count
from prunekit.resources.metric import MetricContext, ResourceMetric, make_metric


MAX_CORRECTIONS = 1
"""Measured checks at the end of a search that may send it on (a latency table predicting too low). One: a
second check on a busy machine read 10 % high and sent a resnet20 run 13 iterations further, from 85 % to 76 %
validation accuracy, for latency it did not need (BENCHMARKS.md, the latency rows)."""

CONFIRM_ROUNDS = 2
"""Interleaved rounds in which an iteration's combined cuts and the current network are timed again when the
cuts read no faster than the current network's reading from the iteration before: on a machine running a
second job, mobilenet_v2's int8 candidates read 0.77-1.14 ms for one cut of 0.81 ms, and comparing against
the older reading threw good combined cuts away (an iteration saved 1 % instead of 10 %)."""

MAX_SHIFT_SHARE = 0.25
"""The most a measured check may raise predictions by, as a share of the base's resource. Tables here miss by
about 10 % (median); a check that reads a pruned network 41 % of its base above its prediction (a resnet20 int8
run, 3.13 against 2.59 ms for the base, while another job ran) raised every prediction by that and sent the
search to 0.8 % of the MACs. A larger gap is capped and said: either the reading was noise or the table does
not describe the network, and neither is mended by cutting the network until the table agrees."""


class Executor(Protocol):
    """Runs an iteration's candidates: ``map(fn, shared, jobs)`` yields ``fn(shared, job)`` for every job, in any order."""

    def map(self, fn: Callable[[IterationInput, CandidateJob], CandidateResult], shared: IterationInput,
            jobs: list[CandidateJob]) -> Iterable[CandidateResult]:
        """Evaluate every job."""


class _Serial:
    def map(self, fn, shared, jobs):
        for job in jobs:
            yield fn(shared, job)


@dataclass
class ResumePoint:
    """Where a stopped run continues: its start figures, its finished iterations and its last network."""

    start: dict[str, Any]
    history: list[dict[str, Any]]
    model: nn.Module


@dataclass
class NetAdaptResult:
    """The adapted network, every iteration's record, and the final figures."""

    model: nn.Module
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    work_dir: Any = None
    """Set by the pipeline layer when the run has a working folder."""


@dataclass
class _State:
    model: nn.Module
    resource: float
    accuracy: float
    score: float | None
    score_loss: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class NetAdaptSearch:
    """NetAdapt on any model, given a :class:`Task` (your fine-tuning, scoring and calibration data)
    and a :class:`NetAdaptConfig`; pass ``resume`` to continue a stopped run."""

    def __init__(self, model: nn.Module, example_inputs: torch.Tensor, config: NetAdaptConfig, task: Task, *,
                 metric: ResourceMetric | None = None, executor: Executor | None = None,
                 events: NetAdaptEvents | None = None, resume: ResumePoint | None = None,
                 progress: bool = False) -> None:
        config.validate()
        get_criterion(config.criterion)
        if needs_gradients(config.criterion):
            raise PrunekitError(f"criterion {config.criterion!r} needs gradients; NetAdapt takes a data-free one "
                                "(l2, l1, fpgm, ...)")
        SCORING_MODES.get(config.scoring)
        self.model, self.example_inputs, self.config, self.task = model, example_inputs, config, task
        self.executor = executor or _Serial()
        self.events = events or NetAdaptEvents()
        self.resume = resume
        self.metric = metric or make_metric(config.resource, MetricContext(
            config.min_channels_step, progress, {"latency": config.latency}))
        self.scoring = self._scoring_mode(model)
        self.corrections: list[dict[str, Any]] = []

    def _scoring_mode(self, model: nn.Module) -> str:
        mode = self.config.scoring
        if mode in NEEDS_BATCHNORM and (not has_batchnorm(model) or self.task.calibration_data is None):
            why = "has no BatchNorm layers" if not has_batchnorm(model) else "has no calibration data"
            self.fallback = f"scoring {mode!r}: the network {why}; candidates are scored by short-term fine-tuning"
            return "finetune"
        self.fallback = None
        return mode

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> NetAdaptResult:
        """Adapt until the budget is met (or ``max_iters``); returns the final network and the history."""
        cfg = self.config
        state, start = self._resume() if self.resume else self._start()
        if self.fallback:
            self.events.message(self.fallback)
        base = start["resource"]
        budget = self.budget(base)
        stopped: str | None = None
        iteration = len(state.history) + 1
        checked: tuple[nn.Module, dict[str, Any]] | None = None
        while True:
            while (cfg.max_iters < 0 or iteration <= cfg.max_iters) and state.resource > budget:
                stopped = self._iterate(state, iteration, base, budget)
                if stopped:
                    break
                iteration += 1
            if stopped or state.resource > budget:
                break
            checked, corrected = self._measured_check(state, base, budget)
            if not corrected:
                break
        if state.resource > budget and stopped is None:
            stopped = f"max_iters={cfg.max_iters} reached"
            self.events.message(f"stopped after max_iters={cfg.max_iters} with {cfg.resource} "
                                f"{human(state.resource)} above the budget {human(budget)}; resume with a larger "
                                "max_iters to continue")
        final = self._finish(state, base, budget, stopped, checked)
        self.events.finished(final, state.model)
        return NetAdaptResult(state.model, state.history, final)

    def budget(self, base: float) -> float:
        """The budget in resource units."""
        return self.config.budget if self.config.budget is not None else self.config.budget_ratio * base

    def _iterate(self, state: _State, iteration: int, base: float, budget: float) -> str | None:
        """One iteration; returns why the run must stop, or None."""
        cfg = self.config
        t0 = time.perf_counter()
        target = budget if cfg.step_mode == "share" else iteration_target(cfg, state.resource, base, iteration, budget)
        shared = IterationInput(state.model, self.example_inputs, iteration, target, cfg, self.metric, self.task,
                                resource=state.resource, score=state.score, score_loss=state.score_loss)
        jobs, skipped = plan_candidates(shared)
        reference = self._reference(shared) if jobs else None
        plan_s = time.perf_counter() - t0
        if not jobs:
            if cfg.step_mode == "share":
                why = (f"iteration {iteration}: no group's cut lowers the {cfg.resource} below "
                       f"{human(state.resource)} (budget {human(budget)})")
                advice = "at these widths the budget cannot be reached; give a larger budget"
            else:
                why = (f"iteration {iteration}: no single group can bring the network from {human(state.resource)} "
                       f"to the target {human(target)} {cfg.resource}")
                advice = "resume with a smaller --init-reduction-ratio to go on"
            self.events.message(f"{why}: stopping here ({advice})")
            return why
        scored = SCORING_MODES.get(self.scoring)(shared, jobs, lambda js: self._run_jobs(shared, js))
        ranked = rank(scored.results, shared)
        if not ranked:
            errors = "; ".join(f"{r.group}: {(r.error or '').splitlines()[0]}" for r in scored.results)
            raise PrunekitError(f"iteration {iteration}: every candidate failed ({errors})")
        kept, resource, cuts = self._combine(shared, ranked, budget)
        best = cuts[0]
        for r in scored.results:
            r.model = None
        tune_s = 0.0
        if not scored.kept_is_tuned or len(cuts) > 1:
            _, tune_s = adapt(shared, kept, (FINETUNE,), best.group)
        t_eval = time.perf_counter()
        accuracy, score, score_loss = self._measure(kept)
        record = {
            "iteration": iteration, "target": target, "resource": resource, "accuracy": accuracy,
            "score": score, "score_loss": score_loss, "group": best.group, "channels": best.channels,
            "removed": best.removed, "cuts": [{"group": c.group, "removed": c.removed, "channels": c.channels}
                                              for c in cuts],
            "scoring": self.scoring, **({"reference": reference} if reference else {}),
            "candidates": [r.record() for r in sorted(scored.results + skipped, key=lambda r: r.group)],
            **({"prediction_shift": self.metric.shift_ms} if getattr(self.metric, "shift_ms", 0) else {}),
            "plan_s": round(plan_s, 3), "kept_finetune_s": round(tune_s, 3),
            "evaluate_s": round(time.perf_counter() - t_eval, 3), "seconds": round(time.perf_counter() - t0, 3),
        }
        state.model, state.resource, state.accuracy, state.score, state.score_loss = (
            kept, resource, accuracy, score, score_loss)
        state.history.append(record)
        self.events.iteration(record, kept)
        return None

    def _reference(self, shared: IterationInput) -> dict[str, float | None] | None:
        """Modes that score candidates after re-estimating BatchNorm statistics compare them with the current
        network given the same treatment (its score and loss go into ``shared``): against the figures of the
        network as it was kept, the re-estimation alone can make every candidate look like a gain."""
        if self.scoring not in NEEDS_BATCHNORM:
            return None
        current = copy.deepcopy(shared.model)
        adapt(shared, current, (CALIBRATE,), "")
        shared.score, shared.score_loss = split_score(self.task.scorer()(current))
        return {"score": shared.score, "loss": shared.score_loss}

    def _combine(self, shared: IterationInput, ranked: list[CandidateResult],
                 budget: float) -> tuple[nn.Module, float, list[CandidateResult]]:
        """The kept network: the best candidate's, or (share mode) the best few candidates' cuts together
        (``cuts_per_iteration``, or ``cut_share`` of the candidates when more), stopping as soon as the budget
        is met; its resource and the cuts it holds."""
        cfg = self.config
        n = max(cfg.cuts_per_iteration, round(cfg.cut_share * len(ranked))) if cfg.step_mode == "share" else 1
        # a measured resource can disagree with the one the cut was planned on (a latency timed twice): keep to
        # the cuts that meet the iteration's target as measured (resource mode), else to those that save something
        meets = [r for r in ranked if r.resource <= shared.target] if cfg.step_mode == "resource" else []
        ranked = meets or [r for r in ranked if r.resource < shared.resource] or ranked
        if n <= 1 or len(ranked) == 1 or ranked[0].resource <= budget:
            return ranked[0].model, ranked[0].resource, ranked[:1]
        cost = self.metric.what_if(shared.structure, self.example_inputs)
        chosen: list[CandidateResult] = []
        for r in ranked[:n]:
            chosen.append(r)
            if cost({c.group: c.removed for c in chosen}) <= budget:
                break
        model, _ = build_candidate(shared, *(CandidateJob(c.group, c.removed, 0.0) for c in chosen))
        adapt(shared, model, (CALIBRATE,) if CALIBRATE in ranked[0].steps else (), "")
        resource = self.metric.of_model(model, self.example_inputs)
        if resource >= shared.resource > ranked[0].resource:
            # the current network's reading is an iteration old, and a machine drifts: both are timed again,
            # side by side, before the cuts are given up
            resource, current = self._side_by_side(model, shared.model, resource)
            if resource >= current:
                # cuts that each save can cost more together, as timed (an int8 runtime's kernel choice; a busy
                # machine): the best single cut, which saved as timed, is kept instead
                return ranked[0].model, ranked[0].resource, ranked[:1]
        return model, resource, chosen

    def _side_by_side(self, model: nn.Module, current: nn.Module, first: float,
                      rounds: int = CONFIRM_ROUNDS) -> tuple[float, float]:
        """``model``'s and ``current``'s resource in interleaved rounds, the lowest of each (``first``: a reading
        of ``model`` already taken): other jobs only ever add time."""
        readings: dict[str, list[float]] = {"model": [first], "current": []}
        for _ in range(rounds):
            readings["current"].append(self.metric.of_model(current, self.example_inputs))
            readings["model"].append(self.metric.of_model(model, self.example_inputs))
        return min(readings["model"]), min(readings["current"])

    def _run_jobs(self, shared: IterationInput, jobs: list[CandidateJob]) -> list[CandidateResult]:
        """Every job's result (by group); models are kept for the ranking, then dropped by the caller."""
        results = []
        keep_models = self.events.wants_candidate_models(shared.iteration)
        for r in self.executor.map(run_candidate, shared, jobs):
            results.append(r)
            self.events.candidate(shared.iteration, r, len(results), len(jobs))
            if not keep_models and r.status != "ok":
                r.model = None
        return sorted(results, key=lambda r: r.group)

    def _measured_check(self, state: _State, base: float,
                        budget: float) -> tuple[tuple[nn.Module, dict[str, Any]] | None, bool]:
        """A predicted resource that met the budget, measured for real (the metric's ``final_report``); when the
        measurement is over, predictions are raised by the error it showed (``correct``) so the search goes on.
        Returns the measurement (with the network it is of) and whether predictions were corrected."""
        report = getattr(self.metric, "final_report", None)
        if report is None:
            return None, False
        measured = report(state.model, self.example_inputs, base=self.model)
        measured["met_as_measured"] = self._met_as_measured(measured, budget)
        if (measured["met_as_measured"] or not getattr(self.metric, "correctable", False)
                or len(self.corrections) >= MAX_CORRECTIONS):
            return (state.model, measured), False
        # a reading over the budget sends the search on: it is confirmed first, the lower of two counts
        again = report(state.model, self.example_inputs, base=self.model)
        again["met_as_measured"] = self._met_as_measured(again, budget)
        readings = [self._in_budget_terms(m, base) for m in (measured, again)]
        if readings[1] < readings[0]:
            measured = again
        if measured["met_as_measured"]:
            return (state.model, measured), False
        target = min(readings)
        shift = min(target - state.resource, MAX_SHIFT_SHARE * base)
        if shift <= 0:
            return (state.model, measured), False
        capped = shift < target - state.resource
        self.metric.correct(shift)
        predicted, state.resource = state.resource, self.metric.of_model(state.model, self.example_inputs)
        kept = {k: measured[k] for k in ("latency_measured_ms", "latency_measured_ratio") if k in measured}
        self.corrections.append({"after_iteration": len(state.history), "shift": shift, "readings": readings,
                                 "capped": capped, **kept})
        if capped:
            self.events.message(
                f"measured at the end: {human(target)} in the budget's terms against a prediction of "
                f"{human(predicted)}, {(target - predicted) / base:.0%} of the base apart (tables miss by about 10 %); "
                f"predictions raised by {MAX_SHIFT_SHARE:.0%} of the base only and the search goes on. If the network "
                "really runs this slow, use --latency-mode measure or rebuild the table on a quiet machine")
        else:
            self.events.message(f"measured at the end: {human(target)} in the budget's terms against {human(budget)}; "
                                f"predictions raised by {human(shift)} and the search goes on")
        return (state.model, measured), True

    def _in_budget_terms(self, measured: dict[str, Any], base: float) -> float:
        """A measurement in the budget's terms: a ratio budget reads the ratio to the base measured alongside."""
        ratio = measured.get("latency_measured_ratio")
        return ratio * base if self.config.budget is None and ratio is not None else measured["latency_measured_ms"]

    def _finish(self, state: _State, base: float, budget: float, stopped: str | None,
                checked: tuple[nn.Module, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The final figures (and the final rounding of widths, when asked for)."""
        cfg = self.config
        final: dict[str, Any] = {}
        if cfg.final_round_to and cfg.final_round_to > 1:
            rounded = round_widths(state.model, self.example_inputs, cfg.final_round_to, cfg.exclude, cfg.criterion,
                                   cfg.attention)
            if rounded is not state.model:
                final.update(before_rounding_accuracy=state.accuracy, before_rounding_resource=state.resource)
                state.model = rounded
                state.resource = self.metric.of_model(rounded, self.example_inputs)
                state.accuracy = split_score(self.task.evaluate(rounded))[0]
                self.events.message(f"widths rounded down to multiples of {cfg.final_round_to}: {cfg.resource} "
                                    f"{human(final['before_rounding_resource'])} -> {human(state.resource)}, val acc "
                                    f"{final['before_rounding_accuracy']:.4f} -> {state.accuracy:.4f}")
        state.model.eval()
        final = {**self.figures(state.model, state.accuracy, state.resource, len(state.history)), **final,
                 "budget": budget, "base_resource": base, "reached_budget": state.resource <= budget,
                 "scoring": self.scoring}
        if state.resource > budget:
            final["stopped"] = stopped
        report = getattr(self.metric, "final_report", None)
        if checked is not None and checked[0] is state.model:  # measured already, as the search ended
            final.update(checked[1])
        elif report is not None:  # e.g. a predicted latency is measured for real at the end
            final.update(report(state.model, self.example_inputs, base=self.model))
            if "latency_measured_ms" in final:
                final["met_as_measured"] = self._met_as_measured(final, budget)
        if self.corrections:
            final["prediction_corrections"] = self.corrections
        return final

    def _met_as_measured(self, final: dict[str, Any], budget: float) -> bool:
        """A ratio budget is judged by the final network against its base measured alongside it (both drift with
        the machine); a budget in milliseconds by the final network's own measurement."""
        ratio = final.get("latency_measured_ratio")
        if self.config.budget is None and ratio is not None:
            return ratio <= self.config.budget_ratio
        return final["latency_measured_ms"] <= budget

    def figures(self, model: nn.Module, accuracy: float, resource: float, iteration: int) -> dict[str, Any]:
        """An iteration's figures: counts, the budgeted resource, validation accuracy."""
        figures = count(model, self.example_inputs).to_dict()
        if self.config.resource not in figures:  # counts are exact integers already; a latency is added
            figures[self.config.resource] = resource
        return {**figures, "val_accuracy": accuracy, "iteration": iteration}

    # -- start and resume ------------------------------------------------------------------------

    def _start(self) -> tuple[_State, dict[str, Any]]:
        current = copy.deepcopy(self.model).cpu().eval()
        attach_input_shape(current, tuple(self.example_inputs.shape[1:]))
        resource = self.metric.of_model(current, self.example_inputs)
        budget = self.budget(resource)
        if budget >= resource:
            raise PrunekitError(f"budget {budget:.4g} {self.config.resource} is not below the model's "
                                f"{resource:.4g}: nothing to do; give a smaller --budget or --budget-ratio")
        self._check_reachable(current, budget)
        accuracy, score, score_loss = self._measure(current)
        start = {"resource": resource, "accuracy": accuracy, "score": score, "score_loss": score_loss}
        self.events.started(self.config, start, current)
        return _State(current, resource, accuracy, score, score_loss), start

    def _measure(self, model: nn.Module) -> tuple[float, float, float | None]:
        """The kept network's accuracy on all the hold-out data, and its score and loss on the candidates'."""
        accuracy, loss = split_score(self.task.evaluate(model))
        if self.task.score is None:
            return accuracy, accuracy, loss
        score, score_loss = split_score(self.task.score(model))
        return accuracy, score, score_loss

    def _check_reachable(self, model: nn.Module, budget: float) -> None:
        cfg = self.config
        structure = analyze_copy(model, self.example_inputs, cfg)
        if not any(score_group(structure, g.name, cfg.criterion, seed=cfg.seed) is not None for g in structure.groups):
            raise PrunekitError(unscorable(cfg.criterion, structure.model, structure))  # as one-shot pruning says
        cost = self.metric.what_if(structure, self.example_inputs)
        floor = cost({g.name: structure.removable(g.name) for g in structure.groups})
        if floor > budget:
            step = cfg.min_channels_step
            width = f"{step} channel" + ("s" if step != 1 else "")
            what = "a larger budget" + (", or a smaller --min-channels-step" if step > 1 else "")
            raise PrunekitError(f"budget {budget:.4g} {cfg.resource} cannot be reached: with every prunable group at "
                                f"its minimum width ({width}) the network still needs {floor:.4g}; give {what}")

    def _resume(self) -> tuple[_State, dict[str, Any]]:
        point = self.resume
        assert point is not None
        last = point.history[-1] if point.history else {}
        if last.get("prediction_shift"):  # the correction a measured check made before the stop
            self.metric.correct(last["prediction_shift"])
        state = _State(point.model.cpu().eval(), last.get("resource", point.start["resource"]),
                       last.get("accuracy", point.start["accuracy"]),
                       last.get("score", point.start.get("score", point.start["accuracy"])),
                       last.get("score_loss", point.start.get("score_loss")), list(point.history))
        return state, point.start


__all__ = ["Executor", "NetAdaptResult", "NetAdaptSearch", "ResumePoint", "candidate_seed"]
