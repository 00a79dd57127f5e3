"""The pipeline's built-in steps: 1 train, 2 prune (a criterion or NetAdapt), 3 fine-tune."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.io import read_description, save_checkpoint
from prunekit.io.output import publish, staging_dir
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.netadapt_step import netadapt_checkpoint
from prunekit.pipeline.prune_step import finetune_checkpoint, prune_checkpoint
from prunekit.pipeline.run import FINETUNE_DEFAULTS, RunPlan, previous, register_step
from prunekit.pipeline.steps import train_base
from prunekit.pipeline.workdir import WorkDir
from prunekit.training import TrainConfig


def _train_settings(plan: RunPlan) -> dict[str, Any]:
    return {"model": plan.model, "model_kwargs": plan.model_kwargs, "weights": plan.weights, "train": plan.train,
            "data": DataConfig.from_dict(plan.data_given, source="data options"), "device": plan.device}


def _prune_settings(plan: RunPlan) -> dict[str, Any]:
    how = (NetAdaptConfig().with_changes(**plan.netadapt_options) if plan.method == "netadapt"
           else plan.prune.replace(criterion=plan.method))
    return {"data": plan.data_for(previous(plan, "2")), "method": plan.method, "pruning": how,
            "batch_size": plan.batch_size, "device": plan.device}


def finetune_config(plan: RunPlan, src: Path) -> TrainConfig:
    """Step 3's recipe: the one ``src`` was trained with, the fine-tuning defaults and the options given on top."""
    recorded = TrainConfig.recorded(read_description(src).get("meta", {}).get("train"), f"{src}/model.json: meta.train")
    return TrainConfig.from_dict({**recorded.to_dict(), **FINETUNE_DEFAULTS, **plan.finetune_given},
                                 source="fine-tuning options")


def _finetune_settings(plan: RunPlan) -> dict[str, Any]:
    src = previous(plan, "3")
    return {"data": plan.data_for(src), "train": finetune_config(plan, src), "teacher": plan.teacher,
            "device": plan.device}


@register_step("1", "base", "base", settings=_train_settings)
def train_step(plan: RunPlan) -> dict[str, Any]:
    """Train the base model."""
    if not plan.model:
        from prunekit.errors import PrunekitError

        raise PrunekitError("step 1 needs --model")
    data = DataConfig.from_dict(plan.data_given, source="data options")
    return train_base(plan.model, data, plan.train, plan.folder("1"), model_kwargs=plan.model_kwargs,
                      weights=plan.weights, progress=plan.progress, log=plan.log, overwrite=plan.overwrite)


@register_step("2", "pruned", "pruned", settings=_prune_settings)
def prune_step(plan: RunPlan) -> dict[str, Any]:
    """Prune the base: one-shot with a criterion, or NetAdapt (its working folder beside)."""
    src = previous(plan, "2")
    if plan.method != "netadapt":
        result = prune_checkpoint(src, plan.folder("2"), plan.prune.replace(criterion=plan.method),
                                  data_cfg=plan.data_for(src), log=plan.log, overwrite=plan.overwrite)
        return result["after"]
    work_dir = plan.work_dir or plan.out / "netadapt"
    result = netadapt_checkpoint(src, work_dir, options=plan.netadapt_options, resume=plan.resume,
                                 data_cfg=plan.data_for(src), batch_size=plan.batch_size, device=plan.device,
                                 executor=plan.executor, progress=plan.progress, log=plan.log,
                                 overwrite=plan.overwrite)
    dest = plan.folder("2")
    stage = staging_dir(dest)
    shutil.rmtree(stage, ignore_errors=True)
    last = WorkDir(work_dir).iteration_dir(len(result.history))
    # the final network: the last iteration's, or that network rounded by --final-round-to
    save_checkpoint(stage, result.model, metrics=result.metrics, meta=read_description(last).get("meta", {}))
    publish(stage, dest, overwrite=True)  # checked before any work: new, or --overwrite / --resume
    return result.metrics


@register_step("3", "finetuned", "fine-tuned", settings=_finetune_settings)
def finetune_step(plan: RunPlan) -> dict[str, Any]:
    """Long-term fine-tuning of the pruned network (the base's recipe, fine-tuning defaults)."""
    src = previous(plan, "3")
    cfg = finetune_config(plan, src)
    teacher = plan.teacher if plan.teacher else None
    result = finetune_checkpoint(src, plan.folder("3"), cfg, teacher=teacher, data_cfg=plan.data_for(src),
                                 progress=plan.progress, log=plan.log, overwrite=plan.overwrite)
    return result["after"]
