"""Training hyper-parameters and the optimizer / schedule they build."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULERS = ("cosine", "step", "none")


@dataclass
class TrainConfig:
    """How to train: a plain, reproducible recipe (same seed, same result on CPU)."""

    epochs: float = 10
    lr: float = 0.05
    batch_size: int = 64
    optimizer: str = "momentum"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    device: str = "cpu"
    seed: int = 0
    sparsity: float = 0.0
    """L1 penalty on BatchNorm scales (network slimming, Liu et al. 2017); 0 turns it off."""
    distill_alpha: float = 0.5
    """Weight of the distillation loss when a teacher is given (the rest is cross-entropy)."""
    distill_temperature: float = 4.0
    channels_last: bool = True
    """Train convolutions in channels-last memory layout (1.2-1.8x faster on CPU); a model whose
    forward cannot take such inputs (e.g. ``x.view`` on a feature map) falls back to the default."""
    topk: int = 1
    """Also report top-k accuracy (e.g. 5) in every epoch's record, the console line and the metrics
    (keys ``train_top5_accuracy``, ``val_top5_accuracy``, ``test_top5_accuracy``); 1: top-1 only."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise PrunekitError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise PrunekitError(f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULERS)}")
        if self.epochs < 0 or self.lr <= 0 or self.batch_size < 1:
            raise PrunekitError("epochs must be >= 0, lr > 0 and batch size >= 1")
        if self.sparsity < 0:
            raise PrunekitError("sparsity must be >= 0")
        if isinstance(self.topk, bool) or int(self.topk) != self.topk or self.topk < 1:
            raise PrunekitError(f"--topk must be a whole number >= 1, got {self.topk}")
        self.topk = int(self.topk)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict, ignoring keys that are not fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})


def make_optimizer(model: nn.Module, cfg: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` names; weight decay skips biases and normalisation scales."""
    lr = cfg.lr if lr is None else lr
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning-rate multiplier at ``step`` of ``total``: cosine to 0, x0.1 at 50 % and 75 %, or constant."""
    if cfg.scheduler == "cosine" and total > 0:
        return 0.5 * (1 + math.cos(math.pi * step / total))
    if cfg.scheduler == "step" and total > 0:
        return 0.1 ** ((step >= total // 2) + (step >= (3 * total) // 4))
    return 1.0
