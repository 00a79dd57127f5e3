"""The pipeline: 1 train the base model, 2 prune (a criterion or NetAdapt), 3 fine-tune, 4 quantize; any subset.

Each step is registered under its number (:func:`register_step`) with the folder it writes under
the run's output folder, and reads the previous step's folder. A new step (e.g. quantization) is
one function plus its registration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prunekit.algorithms.oneshot import PruneConfig
from prunekit.deploy.config import QuantizeConfig
from prunekit.errors import PrunekitError
from prunekit.io import read_description, read_json, write_json
from prunekit.pipeline.context import DataConfig
from prunekit.registry import Registry
from prunekit.training import TrainConfig
from prunekit.training.config import DEFAULT_BATCH_SIZE

FINETUNE_DEFAULTS = {"lr": 0.01, "sparsity": 0.0, "epochs": 10}
"""Fine-tuning starts from trained weights: a lower default learning rate than training from scratch,
and no sparsity penalty (network slimming trains the base with one, then fine-tunes without)."""


@dataclass
class RunPlan:
    """Everything one pipeline run needs, resolved from the CLI, a YAML file or Python."""

    out: Path
    steps: list[str]
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    """A weights file (safetensors or a torch.save'd state dict) loaded onto the model of step 1."""
    data_given: dict[str, Any] = field(default_factory=dict)
    """Data settings given for this run: step 1 uses them, later steps apply them over what was recorded."""
    train: TrainConfig = field(default_factory=TrainConfig)
    method: str = "l2"
    prune: PruneConfig = field(default_factory=PruneConfig)
    netadapt_options: dict[str, Any] = field(default_factory=dict)
    work_dir: Path | None = None
    executor: Any = None
    finetune_given: dict[str, Any] = field(default_factory=dict)
    """Step 3's recipe: the base's, with FINETUNE_DEFAULTS and these on top."""
    teacher: str | None = None
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    quantize_batch: int = 1
    quantize_threads: int | None = None
    """Threads of step 4's timed runs; None: torch's setting, as NetAdapt's latency (one default for --threads)."""
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str = "cpu"
    overwrite: bool = False
    resume: bool = False
    progress: bool = True
    log: Callable[[str], None] = print

    def folder(self, step: str) -> Path:
        """The folder a step writes."""
        return self.out / STEPS.get(step).folder

    def data_for(self, checkpoint: Path) -> DataConfig:
        """The data settings ``checkpoint`` recorded, with this run's given settings on top."""
        recorded = DataConfig.recorded(read_description(checkpoint).get("meta", {}).get("data"),
                                       f"{checkpoint}/model.json: meta.data")
        return DataConfig.from_dict({**recorded.to_dict(), **self.data_given}, source="data options")


@dataclass(frozen=True)
class Step:
    """A pipeline step: its folder under the run's output, its summary label and what it does."""

    folder: str
    label: str
    run: Callable[[RunPlan], dict[str, Any]]
    settings: Callable[[RunPlan], dict[str, Any]] | None = None
    """The settings the step's result depends on, as it will use them (recorded with it, compared on --resume)."""


STEPS: Registry[Any] = Registry("pipeline step")


def register_step(number: str, folder: str, label: str, settings: Callable[[RunPlan], dict[str, Any]] | None = None
                  ) -> Callable[[Callable[[RunPlan], dict]], Callable]:
    """Decorator: register ``fn(plan) -> metrics`` as pipeline step ``number`` writing ``folder``; ``settings(plan)``
    gives what its result depends on, resolved as the step resolves it (the data a checkpoint recorded with the
    options given on top, a recipe with its defaults), so that --resume compares what the step would do."""

    def add(fn: Callable[[RunPlan], dict]) -> Callable[[RunPlan], dict]:
        STEPS.register(number)(Step(folder, label, fn, settings))  # type: ignore[arg-type]
        return fn

    return add


def list_steps() -> list[str]:
    """Registered step numbers."""
    return STEPS.names()


def parse_steps(text: str) -> list[str]:
    """'123' -> ['1', '2', '3']; rejects anything but registered step numbers."""
    steps = sorted(set(str(text)))
    valid = list_steps()
    if not steps or any(s not in valid for s in steps):
        raise PrunekitError(f"--step takes the digits {''.join(valid)} (e.g. 123, 1, 23), got {text!r}")
    return steps


def _needs(plan: RunPlan, step: str) -> tuple[str, Path]:
    """The step whose folder ``step`` reads, and that folder."""
    earlier = [s for s in list_steps() if s < step]
    return earlier[-1], plan.folder(earlier[-1])


def _missing_input(step: str, before: str, folder: Path, steps: list[str]) -> PrunekitError:
    return PrunekitError(f"step {step} needs {folder} from step {before}: run it first "
                         f"(e.g. --step {''.join(sorted({*steps, before}))})")


def previous(plan: RunPlan, step: str) -> Path:
    """The folder the step before ``step`` wrote (it must be there)."""
    before, folder = _needs(plan, step)
    if not (folder / "model.json").is_file():
        raise _missing_input(step, before, folder, [step])
    return folder


def check_inputs(plan: RunPlan) -> None:
    """Refuse, before any work, a chosen step whose input no earlier chosen step makes and that is not on disk."""
    for step in plan.steps:
        if step == list_steps()[0]:
            continue
        before, folder = _needs(plan, step)
        if before not in plan.steps and not (folder / "model.json").is_file():
            raise _missing_input(step, before, folder, plan.steps)


def check_outputs(plan: RunPlan) -> None:
    """Refuse, before any work, to replace step folders that exist (unless --overwrite or --resume)."""
    from prunekit.io.output import check_output

    from prunekit.pipeline.workdir import WorkDir

    for step in plan.steps:
        if kept_on_resume(plan, step):
            continue
        resumable = plan.resume and step == "2" and plan.method == "netadapt"
        check_output(plan.folder(step), plan.overwrite or resumable)
    if "2" in plan.steps and plan.method == "netadapt":
        work = plan.work_dir or plan.out / "netadapt"
        if WorkDir(work).exists() and not (plan.resume or plan.overwrite):
            raise PrunekitError(f"--work-dir {work} already holds a NetAdapt run: pass --resume to continue it, "
                                "--overwrite to replace it, or choose another --work-dir")
        if not (plan.resume and WorkDir(work).exists()):
            check_output(work, plan.overwrite, "--work-dir")
    made_here = {plan.folder(s).resolve() for s in plan.steps}
    if plan.teacher and "3" in plan.steps and Path(plan.teacher).resolve() not in made_here:
        read_description(plan.teacher)  # a wrong --teacher is refused now, not after steps 1 and 2


RUN_SETTINGS = "run_settings.json"
"""Written in a step's folder when the step has finished: the settings that made it (see :func:`step_settings`)."""


def step_settings(plan: RunPlan, step: str) -> dict[str, Any]:
    """The settings that shape what ``step`` itself does, as plain JSON values (the steps before it are compared
    on their own folders: a step is kept only after the ones it reads were kept or made again)."""
    read = STEPS.get(step).settings
    values = read(plan) if read is not None else {}
    plain = {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in values.items()}
    return json.loads(json.dumps(plain, default=str, sort_keys=True))


def record_settings(plan: RunPlan, step: str) -> None:
    """Record in the finished step's folder the settings that made it."""
    write_json(plan.folder(step) / RUN_SETTINGS, step_settings(plan, step))


def _first_difference(saved: Any, now: Any, path: str = "") -> str | None:
    """The first setting (``train.epochs``) whose value differs between two recorded settings, with both values."""
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in sorted(set(saved) | set(now)):
            found = _first_difference(saved.get(key), now.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if saved == now else f"{path}: {saved!r} then, {now!r} now"


def _made_again_before(plan: RunPlan, step: str) -> str | None:
    """An earlier step of this run that will be made again (so ``step``'s folder, made from the old one, is stale)."""
    return next((s for s in plan.steps if s < step and not kept_on_resume(plan, s)), None)


def kept_on_resume(plan: RunPlan, step: str) -> bool:
    """With --resume, a step whose folder holds a finished checkpoint is kept, not run again (the same command
    continues an interrupted pipeline from the step it stopped in); one made with other settings is refused."""
    folder = plan.folder(step)
    if not (plan.resume and (folder / "model.json").is_file() and (folder / "metrics.json").is_file()):
        return False
    if (folder / RUN_SETTINGS).is_file():  # (a folder made before prunekit recorded them is kept as it is)
        difference = _first_difference(read_json(folder / RUN_SETTINGS), step_settings(plan, step))
        if difference:
            raise PrunekitError(f"--resume: {folder} was made with other settings ({difference}); run with the "
                                "settings it was made with, or make it again with --overwrite instead of --resume")
    earlier = _made_again_before(plan, step)
    if earlier is not None:
        raise PrunekitError(f"--resume: {folder} is finished but step {earlier} before it is not: it was made from "
                            f"another {plan.folder(earlier).name}; make it again with --overwrite instead of --resume")
    return True


def run_pipeline(plan: RunPlan) -> list[tuple[str, dict[str, Any]]]:
    """Run the plan's steps in order; returns (label, metrics) rows, starting with the input's."""
    check_inputs(plan)
    check_outputs(plan)
    summary: list[tuple[str, dict[str, Any]]] = []
    for step in plan.steps:
        if not summary and step != "1":
            src = previous(plan, step)
            summary.append((STEPS.get(str(int(step) - 1)).label, read_json(src / "metrics.json")))
        if kept_on_resume(plan, step):
            plan.log(f"step {step}: {plan.folder(step)} is finished: kept (--resume)")
            summary.append((STEPS.get(step).label, read_json(plan.folder(step) / "metrics.json")))
            continue
        summary.append((STEPS.get(step).label, STEPS.get(step).run(plan)))
        record_settings(plan, step)
    return summary
