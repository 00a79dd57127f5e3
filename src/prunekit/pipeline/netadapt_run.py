"""``prunekit.NetAdapt``: the NetAdapt search plus a working folder (history, every iteration's
checkpoint, resume), progress bars and log lines."""

from __future__ import annotations

import copy
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from prunekit.algorithms.netadapt import (
    CandidateResult, NetAdaptConfig, NetAdaptEvents, NetAdaptResult, NetAdaptSearch, ResumePoint, Task,
)
from prunekit.algorithms.plans import one_input
from prunekit.errors import PrunekitError
from prunekit.io import attach_input_shape, plan_of
from prunekit.io.output import check_writable
from prunekit.models import spec_of
from prunekit.pipeline.lut_guard import TableGuard
from prunekit.pipeline.workdir import WorkDir
from prunekit.reports import human


class WorkDirEvents(NetAdaptEvents):
    """Saves a run into its working folder and reports it: log lines, a progress bar per iteration."""

    def __init__(self, work: WorkDir, meta: dict[str, Any], *, log: Callable[[str], None] = print,
                 progress: bool = True, save_interval: int = 0, resource: str = "macs",
                 figures: Callable[..., dict[str, Any]] | None = None, metric_name: str = "accuracy") -> None:
        self.work, self.meta, self.log, self.progress = work, meta, log, progress
        self.save_interval, self.resource, self.figures = save_interval, resource, figures
        self.metric_name = metric_name
        self.acc = "acc" if metric_name == "accuracy" else metric_name
        self.base: float | None = None
        self._bar: tqdm | None = None

    def started(self, config: NetAdaptConfig, start: dict[str, Any], model: nn.Module) -> None:
        """Save iteration 0, then the config that marks the run as started."""
        self.work.path.mkdir(parents=True, exist_ok=True)
        self.work.claim()  # a new folder: held from its creation (an existing one is held by run() already)
        self.work.check_new()  # checked once held: another run may have started here just before
        self.base = start["resource"]
        self.work.save_model(self.work.iteration_dir(0), model, self._figures(model, start["accuracy"],
                                                                              start["resource"], 0), self._meta(0))
        self.work.start({"netadapt": config.to_dict(), "start": start, "meta": self.meta, "metric": self.metric_name})
        budget = config.budget if config.budget is not None else config.budget_ratio * start["resource"]
        self.log(f"NetAdapt: {config.resource} {human(start['resource'])} -> budget {human(budget)} "
                 f"({budget / start['resource']:.1%}), val {self.acc} {start['accuracy']:.4f}, scoring {config.scoring}; "
                 f"working folder {self.work.path}")

    def candidate(self, iteration: int, result: CandidateResult, done: int, total: int) -> None:
        """Advance the progress bar (and save the candidate when save_interval asks)."""
        if self.wants_candidate_models(iteration) and result.model is not None:
            self.work.save_model(self.work.candidate_dir(iteration, result.group), result.model,
                                 self._figures(result.model, result.accuracy, result.resource, iteration),
                                 {**self._meta(iteration), "candidate": result.group})
        if self._bar is None or self._bar.total != total or done == 1:
            self._close_bar()
            self._bar = tqdm(total=total, desc=f"iter {iteration} candidates", leave=False, file=sys.stderr,
                             disable=not self.progress or None)
        acc = f"{result.accuracy:.3f}" if result.accuracy is not None else result.status
        self._bar.set_postfix({"group": result.group, self.acc: acc}, refresh=False)
        self._bar.update(1)

    def wants_candidate_models(self, iteration: int) -> bool:
        """Every candidate of every ``save_interval``-th iteration is saved."""
        return bool(self.save_interval) and iteration % self.save_interval == 0

    def iteration(self, record: dict[str, Any], model: nn.Module) -> None:
        """Save the kept network, then its history line (so a kill never leaves a line without its model)."""
        self._close_bar()
        n = record["iteration"]
        self.work.save_model(self.work.iteration_dir(n), model,
                             self._figures(model, record["accuracy"], record["resource"], n), self._meta(n))
        self.work.append_history(record)
        share = f" ({record['resource'] / self.base:.1%})" if self.base else ""
        more = f" and {len(record['cuts']) - 1} more" if len(record.get("cuts", [])) > 1 else ""
        self.log(f"iter {n:3d}: target {human(record['target'])}, chose {record['group']} "
                 f"(-{record['removed']} -> {record['channels']} ch){more}, {self.resource} {human(record['resource'])}"
                 f"{share}, val {self.acc} {record['accuracy']:.4f}, {record['seconds']:.1f}s")

    def message(self, text: str) -> None:
        """A note for the user."""
        self._close_bar()
        self.log(text)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _figures(self, model: nn.Module, accuracy: float | None, resource: float | None, iteration: int) -> dict:
        figures = self.figures(model, accuracy, resource, iteration) if self.figures else {}
        return figures if self.metric_name == "accuracy" else {**figures, "metric": self.metric_name}

    def _meta(self, iteration: int) -> dict[str, Any]:
        return {**self.meta, "netadapt_iteration": iteration}


class NetAdapt:
    """NetAdapt with a working folder: every iteration's network saved, ``resume=True`` continues a
    stopped run (``options`` given here override its saved settings).

    ``finetune(model, iters)`` trains a candidate in place for ``iters`` batches and
    ``evaluate(model)`` scores it on held-out data (higher is better; a float or a mapping with
    ``accuracy`` and ``loss``): your own training and validation (a DLContext in
    TinyNeuralNetwork's words). ``score`` (a cheaper evaluate for candidates) and
    ``calibration_data`` (seed -> training input batches, for adaptive-BN scoring) are optional.
    ``options`` are the fields of :class:`NetAdaptConfig` (or TinyNeuralNetwork's names for them).

    Any task works: ``evaluate`` returns your metric (mIoU, mAP, a negative loss: higher is better), kept
    under the ``accuracy`` names of the history and the figures; ``metric_name`` (e.g. ``"miou"``) says
    which metric they hold, in ``config.json``, every ``metrics.json``, the log and ``prunekit history``'s
    table and plot.
    """

    def __init__(self, model: nn.Module, example_inputs: torch.Tensor, *, finetune: Callable[[nn.Module, int], Any],
                 evaluate: Callable[[nn.Module], Any], score: Callable[[nn.Module], Any] | None = None,
                 calibration_data: Callable[[int], Any] | None = None, work_dir: str | Path | None = None,
                 resume: bool = False, executor=None, metric=None, progress: bool = True,
                 log: Callable[[str], None] = print, meta: dict[str, Any] | None = None,
                 config: NetAdaptConfig | None = None, metric_name: str = "accuracy", **options: Any) -> None:
        self.model, self.example_inputs = model, one_input(example_inputs)
        self.task = Task(finetune, evaluate, score, calibration_data)
        if work_dir is not None:
            check_writable(Path(work_dir), "work_dir")  # not a file, not under one, writable
        given_work = WorkDir(work_dir) if work_dir is not None else None
        self.resume = resume and given_work is not None and given_work.exists()
        self.executor, self.metric, self.progress, self.log = executor, metric, progress, log
        self.meta, self.metric_name = meta or {}, metric_name
        self.config = resolve_config(given_work if self.resume else None, config, options)
        self.config.validate()  # before any folder is made or table read
        # without a work_dir the run's folder is a new temporary one (result.work_dir), made only once the
        # settings are accepted
        self.work = given_work or WorkDir(tempfile.mkdtemp(prefix="netadapt-"))
        self.temporary = given_work is None
        try:
            self.log = self._also_in_folder(log)
            self.table: TableGuard | None = None
            if metric is None and TableGuard.applies(self.config):  # --lut FILE changes only if the run completes
                self.table = TableGuard(self.config, progress, log)
                metric = self.table.metric()
            self.search = NetAdaptSearch(model, self.example_inputs, self.config, self.task, metric=metric,
                                         executor=executor, events=self._events(),
                                         resume=self._resume_point() if self.resume else None, progress=progress)
            self.events.figures = self.search.figures
        except BaseException:
            self._drop_empty_temporary()
            raise

    def _drop_empty_temporary(self) -> None:
        """Remove the temporary working folder this object made when no iteration was kept in it (a failed start
        leaves nothing behind; a run that got somewhere keeps its folder, result.work_dir, for resume and pick)."""
        if self.temporary and not self.work.history():
            shutil.rmtree(self.work.path, ignore_errors=True)

    def _also_in_folder(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log``, with every line also kept in the working folder's log.txt."""
        def both(line: str) -> None:
            log(line)
            self.work.append_log(line)
        return both

    def _events(self) -> WorkDirEvents:
        self.events = WorkDirEvents(self.work, self.meta, log=self.log, progress=self.progress,
                                    save_interval=self.config.save_interval, resource=self.config.resource,
                                    metric_name=self.metric_name)
        return self.events

    def _resume_point(self) -> ResumePoint:
        saved = self.work.config()
        history = self.work.history()
        fresh = None
        spec = spec_of(self.model)
        if spec is None:
            if plan_of(self.model):
                raise PrunekitError("to resume, pass a fresh (unpruned) instance of the original model")
            fresh = copy.deepcopy(self.model)
        # the model in hand was built from spec.name already (by the user, or with their consent)
        current = self.work.load_model(len(history), fresh, model_factory=spec.name if spec else None)
        attach_input_shape(current, tuple(self.example_inputs.shape[1:]))
        self.log(f"resuming {self.work.path} after iteration {len(history)}")
        self.events.base = saved["start"]["resource"]
        return ResumePoint(saved["start"], history, current)

    def run(self) -> NetAdaptResult:
        """Adapt until the budget is met (or ``max_iters``); the final figures are saved in the folder."""
        with self.work.held():
            return self._run()

    def _run(self) -> NetAdaptResult:
        if not self.resume:
            self.work.check_new()
        else:  # options given on resume replace the saved ones (written only now: nothing failed before)
            self.work.update_config({**self.work.config(), "netadapt": self.config.to_dict()})
        try:
            result = self.search.run()
        except BaseException as err:
            if self.table is not None:
                self.table.note(err)
            self._drop_empty_temporary()
            raise
        if self.table is not None:
            self.table.publish()
        result.work_dir = self.work.path
        if self.metric_name != "accuracy":
            result.metrics["metric"] = self.metric_name
        self.work.write_metrics(result.metrics)
        return result


def resolve_config(work: WorkDir | None, config: NetAdaptConfig | None, options: dict[str, Any]) -> NetAdaptConfig:
    """The run's settings: ``options`` (None values ignored) on top of ``config``, or else of a resumed run's
    saved settings (a budget given on resume replaces the saved one in either form), or else the defaults."""
    given = {k: v for k, v in options.items() if v is not None}
    if work is not None and config is None:
        saved = migrate_saved(work.config()["netadapt"])
        _check_saved_command(work, saved, given)
        _check_unchanged(work, saved, given)
        base = NetAdaptConfig.from_dict(saved, source=f"{work.path}/config.json")
        if "budget" in given or "budget_ratio" in given:
            base.budget, base.budget_ratio = given.pop("budget", None), given.pop("budget_ratio", None)
        return base.with_changes(**given)
    base = config or NetAdaptConfig()
    return base.with_changes(**given)


FIXED_ON_RESUME = ("resource", "platform", "latency_batch")
"""Settings a resumed run keeps (the latency ones for a latency budget): its history's figures are in their terms."""


def _setting(settings: dict[str, Any], key: str) -> Any:
    """A NetAdapt setting from a dict of them, the latency ones given flat or under ``latency`` (flat first)."""
    return settings[key] if key in settings else (settings.get("latency") or {}).get(key)


def _check_unchanged(work: WorkDir, saved: dict[str, Any], given: dict[str, Any]) -> None:
    """Refuse, on resume, a setting that would change what the run's history measures."""
    for key in FIXED_ON_RESUME if saved.get("resource") == "latency" else FIXED_ON_RESUME[:1]:
        old, new = _setting(saved, key), _setting(given, key)
        if new is not None and old is not None and new != old:
            option = "--" + key.replace("_", "-")
            raise PrunekitError(f"--resume: {work.path} was started with {option} {old}, its history is in those terms: "
                                f"resume without {option} {new}, or start a new run in another --work-dir")


def _check_saved_command(work: WorkDir, saved: dict[str, Any], given: dict[str, Any]) -> None:
    """A working folder is data, not code: the shell command of ``--platform command`` that its config.json
    names (``saved``, in today's form) runs on resume only when the user gives it again (``--measure-command``)."""
    saved_command, given_command = _setting(saved, "measure_command"), _setting(given, "measure_command")
    if saved_command and given_command is None:
        raise PrunekitError(f"{work.path}/config.json names the measure command {saved_command!r}, a shell command; "
                            "a working folder is data, not code: give --measure-command again on the command line "
                            "(measure_command= in Python) to resume with it")


def migrate_saved(saved: dict[str, Any]) -> dict[str, Any]:
    """A config saved by an earlier prunekit (latency options in ``extra``) in today's form."""
    saved = dict(saved)
    extra = saved.pop("extra", None) or {}
    names = {"platform": "platform", "mode": "latency_mode", "lut": "lut", "threads": "threads",
             "force_lut": "force_lut", "batch_size": "latency_batch", "clock": "latency_clock",
             "measure_command": "measure_command"}
    if extra:
        saved["latency"] = {**saved.get("latency", {}), **{names[k]: v for k, v in extra.items() if k in names}}
    return saved
