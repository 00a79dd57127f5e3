"""The training loop (with optional BN sparsity and distillation) and evaluation."""

from __future__ import annotations

import json
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
from prunekit.training.config import TrainConfig, lr_factor, make_optimizer
from prunekit.training.state import load_train_state, save_train_state


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model init, dropout) for reproducible CPU runs."""
    torch.manual_seed(seed)


def add_bn_sparsity_grad(model: nn.Module, strength: float) -> None:
    """Add the sub-gradient of ``strength * sum |gamma|`` over BatchNorm scales (network slimming)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and m.weight.grad is not None:
            m.weight.grad.add_(strength * torch.sign(m.weight.detach()))


def _loss(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    ce = F.cross_entropy(logits, y)
    if teacher_logits is None:
        return ce
    t = cfg.distill_temperature
    kd = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(teacher_logits / t, 1), reduction="batchmean") * t * t
    return (1 - cfg.distill_alpha) * ce + cfg.distill_alpha * kd


def topk_key(k: int) -> str:
    """The name of top-k accuracy in results: ``top5_accuracy`` (prefixed ``train_``/``val_``/``test_`` in records)."""
    return f"top{k}_accuracy"


def topk_correct(out: torch.Tensor, y: torch.Tensor, k: int) -> int:
    """How many samples have their label among the ``k`` highest outputs (all of them when k >= classes)."""
    k = min(k, out.shape[1])
    return int((out.topk(k, dim=1).indices == y[:, None]).any(1).sum())


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, batch_size: int = 512, device: str = "cpu",
             topk: int = 1) -> dict[str, float]:
    """Accuracy (0-1) and mean cross-entropy of ``model`` on ``split``; with ``topk`` > 1 also top-k
    accuracy under :func:`topk_key` (e.g. ``top5_accuracy``)."""
    names = ["accuracy", "loss"] + ([topk_key(topk)] if topk > 1 else [])
    if len(split) == 0:
        return {name: float("nan") for name in names}
    was_training = model.training
    model.eval()
    correct, correct_k, loss, seen = 0, 0, 0.0, 0
    for x, y in batches(split, batch_size):
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        if topk > 1:
            correct_k += topk_correct(out, y, topk)
        seen += len(y)
    model.train(was_training)
    result = {"accuracy": correct / seen, "loss": loss / seen}
    if topk > 1:
        result[topk_key(topk)] = correct_k / seen
    return result


def _memory_format(model: nn.Module, example: torch.Tensor, cfg: TrainConfig) -> torch.memory_format:
    """Channels-last when asked for, the input is an image batch and the model's forward accepts it."""
    if not cfg.channels_last or example.dim() != 4:
        return torch.contiguous_format
    was_training = model.training
    try:
        model.to(memory_format=torch.channels_last).eval()
        with torch.no_grad():
            model(example[:2].to(memory_format=torch.channels_last))
        return torch.channels_last
    except RuntimeError:  # e.g. ``x.view(n, -1)`` on a channels-last feature map
        model.to(memory_format=torch.contiguous_format)
        return torch.contiguous_format
    finally:
        model.train(was_training)


class _Epoch:
    """Running figures of one epoch: loss, accuracy (and top-k accuracy when k > 1), samples per second."""

    def __init__(self, topk: int = 1) -> None:
        self.t0, self.seen, self.correct, self.loss_sum = time.perf_counter(), 0, 0, 0.0
        self.topk, self.correct_k = topk, 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        self.seen += len(y)
        self.loss_sum += loss.item() * len(y)
        with torch.no_grad():
            self.correct += (out.argmax(1) == y).sum().item()
            if self.topk > 1:
                self.correct_k += topk_correct(out, y, self.topk)

    def record(self, epoch: int, step: int, lr: float) -> dict:
        seconds = time.perf_counter() - self.t0
        record = {"epoch": epoch, "steps": step, "lr": lr, "train_loss": self.loss_sum / max(self.seen, 1),
                  "train_accuracy": self.correct / max(self.seen, 1), "seconds": seconds,
                  "samples_per_s": self.seen / max(seconds, 1e-9)}
        if self.topk > 1:
            record["train_" + topk_key(self.topk)] = self.correct_k / max(self.seen, 1)
        return record


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
) -> list[dict]:
    """Train ``model`` in place with ``cfg``; returns one record per epoch.

    ``steps`` caps the number of batches (NetAdapt's short-term fine-tuning); otherwise
    ``cfg.epochs`` (may be fractional) sets it. Each epoch's record (loss, accuracy, validation
    accuracy, top-k accuracies when ``cfg.topk`` > 1, samples/s) is appended to ``log_path`` as JSON lines. With ``state_dir`` the run's
    state is saved there after every epoch, and a state found there (same settings) is resumed.
    """
    device = torch.device(cfg.device)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    per_epoch = max(1, math.ceil(len(train_split) / cfg.batch_size))
    total = steps if steps is not None else int(round(cfg.epochs * per_epoch))
    optimizer = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    step, epoch = 0, 0
    state = Path(state_dir) if state_dir else None
    expect = {"config": cfg.to_dict(), "total_steps": total, "samples": len(train_split)}
    if state is not None:
        resumed = load_train_state(state, model, optimizer, gen, expect)
        if resumed:
            step, epoch, history = resumed["step"], resumed["epoch"], resumed["history"]
    if total > step:
        first = next(iter(batches(train_split, min(2, len(train_split)))))[0]
        fmt = _memory_format(model, first.to(device), cfg)
        if teacher is not None:
            teacher.to(memory_format=fmt)
    log = open(log_path, "w") if log_path else None
    for record in history if log else ():  # a resumed run's earlier epochs
        log.write(json.dumps(record) + "\n")
    try:
        while step < total:
            epoch += 1
            model.train()
            figures = _Epoch(cfg.topk)
            n_batches = min(per_epoch, total - step)
            bar = tqdm(total=n_batches, desc=f"{desc} epoch {epoch}", leave=False, disable=not progress or None,
                       file=sys.stderr, dynamic_ncols=True)
            for x, y in batches(train_split, cfg.batch_size, shuffle=True, generator=gen, augment=augment):
                if step >= total:
                    break
                factor = lr_factor(cfg, step, total)
                for g, lr in zip(optimizer.param_groups, base_lrs):
                    g["lr"] = lr * factor
                x, y = x.to(device, memory_format=fmt) if x.dim() == 4 else x.to(device), y.to(device)
                out = model(x)
                with torch.no_grad():
                    t_out = teacher(x) if teacher is not None else None
                loss = _loss(out, y, t_out, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.sparsity:
                    add_bn_sparsity_grad(model, cfg.sparsity)
                optimizer.step()
                step += 1
                figures.add(loss, out, y)
                bar.set_postfix(loss=f"{figures.loss_sum / figures.seen:.3f}",
                                acc=f"{figures.correct / figures.seen:.3f}",
                                sps=f"{figures.seen / max(time.perf_counter() - figures.t0, 1e-9):.0f}", refresh=False)
                bar.update(1)
            bar.close()
            record = figures.record(epoch, step, base_lrs[0] * lr_factor(cfg, step - 1, total))
            if val_split is not None and len(val_split):
                val = evaluate(model, val_split, device=cfg.device, topk=cfg.topk)
                record.update({f"val_{key}": value for key, value in val.items()})
            history.append(record)
            if log:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if state is not None:
                save_train_state(state, model, optimizer, gen, {**expect, "step": step, "epoch": epoch,
                                                                 "history": history})
            if on_epoch:
                on_epoch(record)
    finally:
        if log:
            log.close()
        model.to(memory_format=torch.contiguous_format)
        if teacher is not None:
            teacher.to(memory_format=torch.contiguous_format)
    return history
