"""The training loop (with optional BN sparsity and distillation) and evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from prunekit.data.bundle import Split, batches
from prunekit.errors import PrunekitError
from prunekit.training.config import TrainConfig, lr_factor, make_optimizer
from prunekit.training.inference import FOLD_MIN_VALUES, fused_for_inference, memory_format, memory_format_for
from prunekit.training.tasks import CLASSIFICATION, Objective
from prunekit.training.state import load_train_state, save_train_state


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model init, dropout) for reproducible CPU runs."""
    torch.manual_seed(seed)


def add_bn_sparsity_grad(model: nn.Module, strength: float) -> None:
    """Add the sub-gradient of ``strength * sum |gamma|`` over BatchNorm scales (network slimming)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and m.weight.grad is not None:
            m.weight.grad.add_(strength * torch.sign(m.weight.detach()))


def _loss(task: Objective, logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None,
          cfg: TrainConfig) -> torch.Tensor:
    base = task.loss(logits, y)
    if teacher_logits is None:
        return base
    t = cfg.distill_temperature
    # KL divergence of the class scores (dim 1), averaged over samples (and over pixels for dense outputs)
    positions = logits.numel() / logits.shape[1]
    kd = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(teacher_logits / t, 1), reduction="sum") * t * t / positions
    return (1 - cfg.distill_alpha) * base + cfg.distill_alpha * kd


def check_topk(task: Objective, topk: int) -> None:
    """Top-k accuracy is for class labels only."""
    if topk > 1 and task.targets != "labels":
        raise PrunekitError(f"--topk {topk} applies to class labels; task {task.task} has {task.targets}: use --topk 1")


def topk_key(k: int) -> str:
    """The name of top-k accuracy in results: ``top5_accuracy`` (prefixed ``train_``/``val_``/``test_`` in records)."""
    return f"top{k}_accuracy"


def topk_correct(out: torch.Tensor, y: torch.Tensor, k: int) -> int:
    """How many samples have their label among the ``k`` highest outputs (all of them when k >= classes)."""
    k = min(k, out.shape[1])
    return int((out.topk(k, dim=1).indices == y[:, None]).any(1).sum())


def _named(task: Objective, result: dict) -> dict:
    """``result`` with the metric's name, when the ``accuracy`` field holds another metric than accuracy."""
    return result if task.metric == "accuracy" else {**result, "metric": task.metric}


def _first_inputs(split: Split, device: str) -> torch.Tensor:
    """The first two inputs of ``split`` (one when it holds one), on ``device``: the example that probes a layout."""
    return next(iter(batches(split, min(2, len(split)))))[0].to(device)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, batch_size: int = 512, device: str = "cpu",
             topk: int = 1, task: Objective | None = None, fast: bool = True) -> dict:
    """The task's metric under ``accuracy`` (top-1 accuracy by default; ``metric`` names another, e.g. ``miou``)
    and its mean loss under ``loss``, of ``model`` on ``split``; with ``topk`` > 1 also top-k accuracy under
    :func:`topk_key` (e.g. ``top5_accuracy``). With ``fast`` it runs channels-last, and on data of at least
    ``FOLD_MIN_VALUES`` input values a copy with BatchNorm folded into the layers before it, where the model
    allows (:mod:`prunekit.training.inference`): the same results to float rounding, up to 1.8x faster for
    resnet20 on one CPU thread."""
    task = task or CLASSIFICATION
    check_topk(task, topk)
    names = ["accuracy", "loss"] + ([topk_key(topk)] if topk > 1 else [])
    if len(split) == 0:
        return _named(task, {name: float("nan") for name in names})
    was_training = model.training
    model.eval()
    meter, correct_k, loss, seen = task.meter(), 0, 0.0, 0
    first = _first_inputs(split, device)
    net = fused_for_inference(model, first) if fast and len(split) * first[0].numel() >= FOLD_MIN_VALUES else model
    with memory_format(net, first, fast) as fmt:
        for x, y in batches(split, batch_size):
            x = x.to(device, memory_format=fmt) if x.dim() == 4 else x.to(device)
            y = y.to(device)
            out = net(x)
            loss += float(task.loss(out, y)) * len(y)
            meter.update(out, y)
            if topk > 1:
                correct_k += topk_correct(out, y, topk)
            seen += len(y)
    model.train(was_training)
    result = {"accuracy": float(meter.compute()), "loss": loss / seen}
    if topk > 1:
        result[topk_key(topk)] = correct_k / seen
    return _named(task, result)


class _Epoch:
    """Running figures of one epoch: loss, the task's metric (and top-k accuracy when k > 1), samples per second."""

    def __init__(self, task: Objective, topk: int = 1) -> None:
        self.t0, self.seen, self.loss_sum = time.perf_counter(), 0, 0.0
        self.task, self.meter, self.topk, self.correct_k = task, task.meter(), topk, 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self.seen += len(y)
        self.loss_sum += loss.item() * len(y)
        with torch.no_grad():
            self.meter.update(out.detach(), y)
            if self.topk > 1:
                self.correct_k += topk_correct(out, y, self.topk)

    def metric(self) -> float:
        return float(self.meter.compute()) if self.seen else 0.0

    def record(self, epoch: int, step: int, lr: float) -> dict:
        seconds = time.perf_counter() - self.t0
        record = {"epoch": epoch, "steps": step, "lr": lr, "train_loss": self.loss_sum / max(self.seen, 1),
                  "train_accuracy": self.metric(), "seconds": seconds,
                  "samples_per_s": self.seen / max(seconds, 1e-9)}
        if self.topk > 1:
            record["train_" + topk_key(self.topk)] = self.correct_k / max(self.seen, 1)
        return _named(self.task, record)


@dataclass
class _Run:
    """One training run's moving parts: the optimizer and its base rates, the data order, the progress."""

    model: nn.Module
    cfg: TrainConfig
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    generator: torch.Generator
    total: int
    teacher: nn.Module | None
    task: Objective = CLASSIFICATION
    memory_format: torch.memory_format = torch.contiguous_format
    step: int = 0
    epoch: int = 0

    def batch(self, x: torch.Tensor, y: torch.Tensor, figures: _Epoch) -> None:
        """One optimisation step on (x, y)."""
        factor = lr_factor(self.cfg, self.step, self.total)
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * factor
        device = self.cfg.device
        x = x.to(device, memory_format=self.memory_format) if x.dim() == 4 else x.to(device)
        y = y.to(device)
        out = self.model(x)
        with torch.no_grad():
            t_out = self.teacher(x) if self.teacher is not None else None
        loss = _loss(self.task, out, y, t_out, self.cfg)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.sparsity:
            add_bn_sparsity_grad(self.model, self.cfg.sparsity)
        self.optimizer.step()
        self.step += 1
        figures.add(loss, out, y)

    def epoch_pass(self, split: Split, per_epoch: int, augment: str, bar: tqdm) -> dict:
        """One epoch (or what is left of the run); its record."""
        self.epoch += 1
        self.model.train()
        figures = _Epoch(self.task, self.cfg.topk)
        for x, y in batches(split, self.cfg.batch_size, shuffle=True, generator=self.generator, augment=augment):
            if self.step >= self.total:
                break
            self.batch(x, y, figures)
            bar.set_postfix({"loss": f"{figures.loss_sum / figures.seen:.3f}",
                             "acc" if self.task.metric == "accuracy" else self.task.metric: f"{figures.metric():.3f}",
                             "sps": f"{figures.seen / max(time.perf_counter() - figures.t0, 1e-9):.0f}"}, refresh=False)
            bar.update(1)
        return figures.record(self.epoch, self.step, self.base_lrs[0] * lr_factor(self.cfg, self.step - 1, self.total))


def _start(model: nn.Module, split: Split, cfg: TrainConfig, steps: int | None, teacher: nn.Module | None,
           state: Path | None, task: Objective) -> tuple[_Run, list[dict], dict]:
    """The run set up (resumed from ``state`` when it holds one), its earlier records, and its identity."""
    model.to(torch.device(cfg.device))
    if teacher is not None:
        teacher.to(torch.device(cfg.device)).eval()
    per_epoch = max(1, math.ceil(len(split) / cfg.batch_size))
    total = steps if steps is not None else int(round(cfg.epochs * per_epoch))
    optimizer = make_optimizer(model, cfg)
    run = _Run(model, cfg, optimizer, [g["lr"] for g in optimizer.param_groups], torch.Generator().manual_seed(cfg.seed),
               total, teacher, task)
    expect = {"config": cfg.to_dict(), "total_steps": total, "samples": len(split)}
    history: list[dict] = []
    resumed = load_train_state(state, model, optimizer, run.generator, expect, TrainConfig().to_dict()) if state is not None else None
    if resumed:
        run.step, run.epoch, history = resumed["step"], resumed["epoch"], resumed["history"]
    if total > run.step:
        first = _first_inputs(split, cfg.device)
        run.memory_format = memory_format_for(model, first, cfg.channels_last)
        if teacher is not None:  # it only predicts: a copy with BatchNorm folded computes the same, faster
            run.teacher = fused_for_inference(teacher, first)
            run.teacher.to(memory_format=run.memory_format)
    return run, history, expect


def train(
    model: nn.Module,
    train_split: Split,
    cfg: TrainConfig,
    *,
    val_split: Split | None = None,
    augment: str = "none",
    steps: int | None = None,
    teacher: nn.Module | None = None,
    log_path: str | Path | None = None,
    progress: bool = True,
    desc: str = "train",
    on_epoch: Callable[[dict], None] | None = None,
    state_dir: str | Path | None = None,
    task: Objective | None = None,
) -> list[dict]:
    """Train ``model`` in place with ``cfg``; returns one record per epoch.

    ``steps`` caps the number of batches (NetAdapt's short-term fine-tuning); otherwise
    ``cfg.epochs`` (may be fractional) sets it. Each epoch's record (loss, accuracy, validation
    accuracy, top-k accuracies when ``cfg.topk`` > 1, samples/s) is written to ``log_path`` as JSON
    lines. With ``state_dir`` the run's state is saved there after every epoch, and a state found
    there (same settings) is resumed. ``task`` gives the loss and the metric (default: cross-entropy and
    top-1 accuracy; records keep the ``accuracy`` names and say ``metric`` when it is another one).
    """
    task = task or CLASSIFICATION
    check_topk(task, cfg.topk)
    state = Path(state_dir) if state_dir else None
    run, history, expect = _start(model, train_split, cfg, steps, teacher, state, task)
    per_epoch = max(1, math.ceil(len(train_split) / cfg.batch_size))
    log = open(log_path, "w") if log_path else None
    for record in history if log else ():  # a resumed run's earlier epochs
        log.write(json.dumps(record) + "\n")
    try:
        while run.step < run.total:
            bar = tqdm(total=min(per_epoch, run.total - run.step), desc=f"{desc} epoch {run.epoch + 1}", leave=False,
                       disable=not progress or None, file=sys.stderr, dynamic_ncols=True)
            record = run.epoch_pass(train_split, per_epoch, augment, bar)
            bar.close()
            if val_split is not None and len(val_split):
                val = evaluate(model, val_split, device=cfg.device, topk=cfg.topk, task=task)
                # evaluate may leave the model contiguous; the next epoch must train in the layout a resumed
                # run trains in, or the two differ by float rounding (amplified by a constant learning rate)
                model.to(memory_format=run.memory_format)
                record.update({f"val_{key}": value for key, value in val.items() if key != "metric"})
            history.append(record)
            if log:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if state is not None:
                save_train_state(state, model, run.optimizer, run.generator,
                                 {**expect, "step": run.step, "epoch": run.epoch, "history": history})
            if on_epoch:
                on_epoch(record)
    finally:
        if log:
            log.close()
        model.to(memory_format=torch.contiguous_format)
        if teacher is not None:
            teacher.to(memory_format=torch.contiguous_format)
    return history
