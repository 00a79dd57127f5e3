"""The data side of NetAdapt on a dataset: short-term fine-tuning on the training split, scoring on
the hold-out validation split (or a seeded subset of it), and BatchNorm calibration batches."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from prunekit.algorithms.netadapt import NetAdaptConfig, Task
from prunekit.data import DataBundle, batches
from prunekit.data.bundle import take
from prunekit.errors import PrunekitError
from prunekit.training import TrainConfig, evaluate, train
from prunekit.training.config import DEFAULT_BATCH_SIZE


class DataFinetune:
    """``finetune(model, iters)`` on a dataset's training split: SGD with momentum at a constant rate,
    distilling from ``teacher`` when one is given. The batch order follows torch's global seed,
    which NetAdapt sets per candidate."""

    def __init__(self, data: DataBundle, lr: float = 0.01, batch_size: int = DEFAULT_BATCH_SIZE,
                 weight_decay: float = 5e-4, device: str = "cpu", teacher: nn.Module | None = None) -> None:
        self.data, self.lr, self.batch_size, self.weight_decay, self.device = data, lr, batch_size, weight_decay, device
        self.teacher = teacher

    def __call__(self, model: nn.Module, iters: int) -> None:
        """Train ``model`` in place for ``iters`` batches."""
        cfg = TrainConfig(lr=self.lr, batch_size=self.batch_size, weight_decay=self.weight_decay, scheduler="none",
                          device=self.device, seed=torch.initial_seed() % (2**31))
        train(model, self.data.train, cfg, steps=iters, augment=self.data.augment, teacher=self.teacher,
              progress=False, task=self.data.task)
        model.to("cpu")
        if self.teacher is not None:
            self.teacher.to("cpu")


class DataEvaluate:
    """``evaluate(model) -> {"accuracy", "loss"}`` on a dataset's hold-out validation split (never the
    test split), or on a seeded subset of ``samples`` of it: the data's task's metric (``accuracy`` holds
    it, ``metric`` names another) and loss."""

    def __init__(self, data: DataBundle, device: str = "cpu", samples: int | None = None, seed: int = 0) -> None:
        if len(data.val) == 0:
            raise PrunekitError("NetAdapt scores candidates on a hold-out validation split: set --val-size > 0")
        self.split = take(data.val, samples, seed) if samples and samples < len(data.val) else data.val
        self.device, self.task = device, data.task

    def __call__(self, model: nn.Module) -> dict:
        """The metric (e.g. accuracy, 0-1) and the mean loss."""
        result = evaluate(model, self.split, device=self.device, task=self.task)
        model.to("cpu")
        return result


def calibration_batches(data: DataBundle,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> Callable[[int], Iterator[torch.Tensor]]:
    """``seed -> training input batches`` (shuffled in a seeded order, with the data's augmentation) for
    re-estimating BatchNorm statistics."""

    def feed(seed: int) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        while True:
            for x, _ in batches(data.train, batch_size, shuffle=True, generator=gen, augment=data.augment):
                yield x

    return feed


def data_task(data: DataBundle, config: NetAdaptConfig, *, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu",
              teacher: nn.Module | None = None) -> Task:
    """NetAdapt's :class:`Task` on a dataset: fine-tune on train, score on (a subset of) val."""
    score = DataEvaluate(data, device, config.score_samples, config.seed) if config.score_samples else None
    return Task(DataFinetune(data, config.finetune_lr, batch_size, device=device,
                             teacher=teacher if config.distill else None),
                DataEvaluate(data, device), score, calibration_batches(data, batch_size))
