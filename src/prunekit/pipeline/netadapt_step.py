"""Step 2 with NetAdapt: adapt a checkpoint to a budget, using the checkpoint's own data for
short-term fine-tuning (training split) and scoring (the hold-out validation split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from prunekit.algorithms.netadapt import NetAdapt, NetAdaptResult, WorkDir
from prunekit.data import DataBundle
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import data_config_of
from prunekit.training import TrainConfig, evaluate, train


class DataFinetune:
    """``finetune(model, iters)`` on a dataset's training split: SGD with momentum at a constant rate.

    The batch order follows torch's global seed, which NetAdapt sets per candidate.
    """

    def __init__(self, data: DataBundle, lr: float = 0.01, batch_size: int = 64, weight_decay: float = 5e-4,
                 device: str = "cpu") -> None:
        self.data, self.lr, self.batch_size, self.weight_decay, self.device = data, lr, batch_size, weight_decay, device

    def __call__(self, model: nn.Module, iters: int) -> None:
        """Train ``model`` in place for ``iters`` batches."""
        cfg = TrainConfig(lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay, scheduler="none",
                          device=self.device, seed=torch.initial_seed() % (2**31))
        train(model, self.data.train, cfg, steps=iters, augment=self.data.augment, progress=False)
        model.to("cpu")


class DataEvaluate:
    """``evaluate(model) -> accuracy`` on a dataset's hold-out validation split (never the test split)."""

    def __init__(self, data: DataBundle, device: str = "cpu") -> None:
        if len(data.val) == 0:
            raise PrunekitError("NetAdapt scores candidates on a hold-out validation split: set --val-size > 0")
        self.data, self.device = data, device

    def __call__(self, model: nn.Module) -> float:
        """Validation accuracy (0-1)."""
        acc = evaluate(model, self.data.val, device=self.device)["accuracy"]
        model.to("cpu")
        return acc


def netadapt_checkpoint(
    checkpoint: str | Path | None,
    work_dir: str | Path,
    *,
    options: dict[str, Any],
    resume: bool = False,
    data_cfg: DataConfig | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    executor=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> NetAdaptResult:
    """Run (or resume) NetAdapt on a checkpoint folder; the final metrics include test accuracy."""
    work = WorkDir(work_dir)
    if resume and work.exists():
        saved = work.config()
        checkpoint = checkpoint or saved.get("meta", {}).get("source")
        data_cfg = data_cfg or DataConfig.from_dict(saved.get("meta", {}).get("data", {}))
    elif resume:
        log(f"nothing to resume in {work_dir}: starting a new run")
    if checkpoint is None:
        raise PrunekitError("--checkpoint is required (except when resuming)")
    ckpt = load_checkpoint(checkpoint)
    data_cfg = data_cfg or data_config_of(ckpt)
    data = data_cfg.load()
    finetune = DataFinetune(data, batch_size=batch_size, device=device)
    meta = {**ckpt.meta, "data": data_cfg.to_dict(), "source": str(checkpoint)}
    search = NetAdapt(ckpt.model, ckpt.example_inputs(), finetune=finetune, evaluate=DataEvaluate(data, device),
                      work_dir=work_dir, resume=resume, executor=executor, progress=progress, log=log, meta=meta,
                      **options)
    finetune.lr = search.config.finetune_lr  # the saved setting when resuming
    result = search.run()
    test = evaluate(result.model, data.test, device=device)
    result.model.to("cpu")
    result.metrics.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
    work.write_metrics(result.metrics)
    return result
