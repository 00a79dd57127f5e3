"""The NetAdapt loop (Yang et al., ECCV 2018): lower the target, try every group, keep the best, repeat."""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import nn
from tqdm import tqdm

from prunekit.algorithms.netadapt.candidate import (
    CandidateJob, CandidateResult, IterationInput, best_of, plan_candidates, run_candidate,
)
from prunekit.algorithms.netadapt.config import NetAdaptConfig, target_schedule
from prunekit.algorithms.netadapt.workdir import WorkDir
from prunekit.criteria import get_criterion, needs_gradients
from prunekit.errors import PrunekitError
from prunekit.io import attach_input_shape, plan_of
from prunekit.models import spec_of
from prunekit.reports import human
from prunekit.resources import measure
from prunekit.resources.metric import ResourceMetric, make_metric
from prunekit.structure import analyze


class Executor(Protocol):
    """Runs an iteration's candidates: ``map(fn, shared, jobs)`` yields ``fn(shared, job)`` for every job, in any order."""

    def map(self, fn: Callable[[IterationInput, CandidateJob], CandidateResult], shared: IterationInput,
            jobs: list[CandidateJob]) -> Iterable[CandidateResult]:
        """Evaluate every job."""


class InProcess:
    """The default executor: candidates one after another in this process."""

    name = "serial"

    def map(self, fn, shared, jobs):
        """Evaluate every job in order."""
        for job in jobs:
            yield fn(shared, job)


@dataclass
class NetAdaptResult:
    """The adapted network, every iteration's record, and where they are saved."""

    model: nn.Module
    history: list[dict[str, Any]]
    work_dir: Path
    metrics: dict[str, Any]


class NetAdapt:
    """Budget-driven iterative channel pruning of any model.

    ``finetune(model, iters)`` trains a candidate in place for ``iters`` batches and
    ``evaluate(model) -> float`` scores it on held-out data (higher is better): your own training
    and validation (a DLContext in TinyNeuralNetwork's words). ``options`` are the fields of
    :class:`NetAdaptConfig` (``init_reduction_ratio``, ``reduction_decay``, ``min_channels_step``,
    ``short_term_iters``, ``finetune_lr``, ``criterion``, ``exclude``, ``max_iters``,
    ``save_interval``, ``seed``, ...). With ``resume=True`` a run found in ``work_dir`` continues
    from its last finished iteration (``options`` given here override its saved ones).
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: torch.Tensor,
        *,
        budget: float | None = None,
        budget_ratio: float | None = None,
        resource: str = "macs",
        finetune: Callable[[nn.Module, int], Any],
        evaluate: Callable[[nn.Module], float],
        work_dir: str | Path | None = None,
        resume: bool = False,
        executor: Executor | None = None,
        metric: ResourceMetric | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
        meta: dict[str, Any] | None = None,
        fault: Callable[[CandidateJob], None] | None = None,
        **options: Any,
    ) -> None:
        self.model = model
        self.example_inputs = example_inputs
        self.finetune = finetune
        self.evaluate = evaluate
        self.work = WorkDir(work_dir or tempfile.mkdtemp(prefix="netadapt-"))
        self.resume = resume
        self.executor = executor or InProcess()
        self.progress = progress
        self.log = log
        self.meta = meta or {}
        self.fault = fault
        settings = dict(options, budget=budget, budget_ratio=budget_ratio, resource=resource)
        if resume and self.work.exists():
            saved = NetAdaptConfig.from_dict(self.work.config()["netadapt"])
            given = {k: v for k, v in options.items() if v is not None}
            if budget is not None or budget_ratio is not None:  # a new budget replaces the saved one, in either form
                saved.budget, saved.budget_ratio = budget, budget_ratio
            self.config = saved.replace(**given)
        else:
            self.config = NetAdaptConfig.from_dict({k: v for k, v in settings.items() if v is not None or k in ("budget", "budget_ratio")})
        self.config.validate()
        get_criterion(self.config.criterion)
        if needs_gradients(self.config.criterion):
            raise PrunekitError(f"criterion {self.config.criterion!r} needs gradients; NetAdapt takes a data-free one (l2, l1, fpgm, ...)")
        self.metric = metric or make_metric(self.config.resource, min_channels_step=self.config.min_channels_step,
                                            progress=progress, **self.config.extra)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> NetAdaptResult:
        """Adapt until the budget is met (or ``max_iters``); returns the final network and the history."""
        cfg = self.config
        if self.resume and self.work.exists():
            current, start = self._resume_state()
        else:
            current, start = self._start()
        base = start["resource"]
        budget = cfg.budget if cfg.budget is not None else cfg.budget_ratio * base
        init_reduction = cfg.init_reduction if cfg.init_reduction is not None else cfg.init_reduction_ratio * base
        history = self.work.history()
        iteration = len(history) + 1
        resource = history[-1]["resource"] if history else base
        accuracy = history[-1]["accuracy"] if history else start["accuracy"]
        stopped: str | None = None
        while iteration <= cfg.max_iters and resource > budget:
            t0 = time.perf_counter()
            target = target_schedule(resource, iteration, init_reduction, cfg.reduction_decay, budget)
            shared = IterationInput(current, self.example_inputs, iteration, target, cfg, self.metric,
                                    self.finetune, self.evaluate, self.fault)
            jobs, skipped = plan_candidates(shared)
            plan_s = time.perf_counter() - t0
            if not jobs:
                stopped = (f"iteration {iteration}: no single group can bring the network from {human(resource)} to "
                           f"the target {human(target)} {cfg.resource}")
                self.log(f"{stopped}: stopping here (resume with a smaller --init-reduction-ratio to go on)")
                break
            results, best = self._evaluate(shared, jobs)
            if best is None:
                errors = "; ".join(f"{r.group}: {(r.error or '').splitlines()[0]}" for r in results)
                raise PrunekitError(f"iteration {iteration}: every candidate failed ({errors})")
            record = {
                "iteration": iteration,
                "target": target,
                "resource": best.resource,
                "accuracy": best.accuracy,
                "group": best.group,
                "channels": best.channels,
                "removed": best.removed,
                "candidates": [r.record() for r in sorted(results + skipped, key=lambda r: r.group)],
                "plan_s": round(plan_s, 3),
            }
            t_save = time.perf_counter()
            self.work.save_model(self.work.iteration_dir(iteration), best.model,
                                 self._figures(best.model, best.accuracy, best.resource, iteration),
                                 {**self.meta, "netadapt_iteration": iteration})
            record["save_s"] = round(time.perf_counter() - t_save, 3)
            record["seconds"] = round(time.perf_counter() - t0, 3)
            self.work.append_history(record)
            current, resource, accuracy = best.model, best.resource, best.accuracy
            self.log(f"iter {iteration:3d}: target {human(target)}, chose {best.group} "
                     f"(-{best.removed} -> {best.channels} ch), {cfg.resource} {human(resource)} "
                     f"({resource / base:.1%}), val acc {accuracy:.4f}, {record['seconds']:.1f}s")
            iteration += 1
        if resource > budget and stopped is None:
            stopped = f"max_iters={cfg.max_iters} reached"
            self.log(f"stopped after max_iters={cfg.max_iters} with {cfg.resource} {human(resource)} "
                     f"above the budget {human(budget)}; resume with a larger max_iters to continue")
        current.eval()
        final = {**self._figures(current, accuracy, resource, len(self.work.history())), "budget": budget,
                 "base_resource": base, "reached_budget": resource <= budget}
        if resource > budget:
            final["stopped"] = stopped
        report = getattr(self.metric, "final_report", None)
        if report is not None:  # e.g. a predicted latency is measured for real at the end
            final.update(report(current, self.example_inputs, base=self.model))
        self.work.write_metrics(final)
        return NetAdaptResult(current, self.work.history(), self.work.path, final)

    def _figures(self, model: nn.Module, accuracy: float, resource: float, iteration: int) -> dict[str, Any]:
        """What an iteration's metrics.json holds: counts, the budgeted resource, validation accuracy."""
        figures = measure(model, self.example_inputs).to_dict()
        if self.config.resource not in figures:  # counts are exact integers already; a latency is added
            figures[self.config.resource] = resource
        return {**figures, "val_accuracy": accuracy, "iteration": iteration}

    def _evaluate(self, shared: IterationInput, jobs: list[CandidateJob]) -> tuple[list[CandidateResult], CandidateResult | None]:
        """Every candidate's result (by group) and the best one; only the best keeps its model
        (the others are saved first when save_interval asks)."""
        results: list[CandidateResult] = []
        best: CandidateResult | None = None
        save = bool(self.config.save_interval) and shared.iteration % self.config.save_interval == 0
        bar = tqdm(total=len(jobs), desc=f"iter {shared.iteration} candidates", leave=False,
                   disable=not self.progress or None, file=sys.stderr)
        try:
            for r in self.executor.map(run_candidate, shared, jobs):
                results.append(r)
                if save and r.model is not None:
                    self._save_candidate(shared.iteration, r)
                if r.status == "ok" and best_of([r] + ([best] if best else [])) is r:
                    if best is not None:
                        best.model = None
                    best = r
                else:
                    r.model = None
                bar.set_postfix(group=r.group, acc=f"{r.accuracy:.3f}" if r.accuracy is not None else r.status,
                                refresh=False)
                bar.update(1)
        finally:
            bar.close()
        return sorted(results, key=lambda r: r.group), best

    def _save_candidate(self, iteration: int, r: CandidateResult) -> None:
        self.work.save_model(self.work.candidate_dir(iteration, r.group), r.model,
                             self._figures(r.model, r.accuracy, r.resource, iteration),
                             {**self.meta, "netadapt_iteration": iteration, "candidate": r.group})

    # -- start and resume ------------------------------------------------------------------------

    def _start(self) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        current = copy.deepcopy(self.model).cpu().eval()
        attach_input_shape(current, tuple(self.example_inputs.shape[1:]))
        resource = self.metric.of_model(current, self.example_inputs)
        budget = cfg.budget if cfg.budget is not None else cfg.budget_ratio * resource
        if budget >= resource:
            raise PrunekitError(f"budget {budget:.4g} {cfg.resource} is not below the model's {resource:.4g}: nothing to do")
        self._check_reachable(current, budget)
        accuracy = float(self.evaluate(current))
        start = {"resource": resource, "accuracy": accuracy}
        self.work.check_new()
        # the starting network is saved before the config that marks the run as started
        self.work.save_model(self.work.iteration_dir(0), current, self._figures(current, accuracy, resource, 0),
                             {**self.meta, "netadapt_iteration": 0})
        self.work.start({"netadapt": cfg.to_dict(), "start": start, "meta": self.meta})
        self.log(f"NetAdapt: {cfg.resource} {human(resource)} -> budget {human(budget)} ({budget / resource:.1%}), "
                 f"val acc {accuracy:.4f}; working folder {self.work.path}")
        return current, start

    def _check_reachable(self, model: nn.Module, budget: float) -> None:
        cfg = self.config
        structure = analyze(copy.deepcopy(model), self.example_inputs, exclude=cfg.exclude, round_to=cfg.min_channels_step)
        cost = self.metric.what_if(structure, self.example_inputs)
        floor = cost({g.name: structure.removable(g.name) for g in structure.groups})
        if floor > budget:
            raise PrunekitError(f"budget {budget:.4g} {cfg.resource} cannot be reached: with every prunable group at "
                                f"its minimum width ({cfg.min_channels_step} channels) the network still needs {floor:.4g}")

    def _resume_state(self) -> tuple[nn.Module, dict[str, Any]]:
        saved = self.work.config()
        saved["netadapt"] = self.config.to_dict()
        self.work.update_config(saved)
        done = len(self.work.history())
        fresh = None
        spec = spec_of(self.model)
        if spec is None:
            if plan_of(self.model):
                raise PrunekitError("to resume, pass a fresh (unpruned) instance of the original model")
            fresh = copy.deepcopy(self.model)
        # the model in hand was built from spec.name already (by the user or with their consent)
        current = self.work.load_model(done, fresh, model_factory=spec.name if spec else None)
        self.log(f"resuming {self.work.path} after iteration {done}")
        return current, saved["start"]
