"""Training hyper-parameters and the optimizer / schedule they build."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.settings import Settings, setting

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULERS = ("cosine", "step", "none")
DEFAULT_BATCH_SIZE = 64
"""The batch size of training, fine-tuning and NetAdapt's short-term fine-tuning unless one is given (defined once)."""


@dataclass
class TrainConfig(Settings):
    """How to train: a plain, reproducible recipe (same seed, same result on CPU)."""

    epochs: float = setting(10, "training epochs (fractions allowed)")
    lr: float = setting(0.05, "learning rate")
    batch_size: int = setting(DEFAULT_BATCH_SIZE, "batch size")
    optimizer: str = setting("momentum", "sgd, momentum (Nesterov) or adam", choices=OPTIMIZERS)
    momentum: float = setting(0.9, "momentum of the momentum optimizer")
    weight_decay: float = setting(5e-4, "weight decay (not on biases and normalisation scales)")
    scheduler: str = setting("cosine", "learning-rate schedule: cosine to 0, step (x0.1 at 50 % and 75 %) or none",
                             choices=SCHEDULERS)
    device: str = setting("cpu", "cpu, cuda or cuda:N")
    seed: int = setting(0, "random seed (initialisation, data order, augmentation)")
    sparsity: float = setting(0.0, "L1 penalty on BatchNorm scales, for network slimming (Liu et al. 2017); 0: off")
    distill_alpha: float = setting(0.5, "weight of the distillation loss when a teacher is given (the rest is "
                                        "cross-entropy)")
    distill_temperature: float = setting(4.0, "softmax temperature of distillation")
    channels_last: bool = setting(True, "train convolutions in channels-last layout (1.2-1.8x faster on CPU; "
                                        "models whose forward cannot take it fall back)")
    topk: int = setting(1, "also report top-k accuracy, e.g. 5, in every epoch's log, the console line and the "
                           "metrics (1: top-1 only)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size < 1:
            raise PrunekitError(f"--epochs and --lr must be > 0 and --batch-size >= 1 (got epochs {self.epochs:g}, "
                                f"lr {self.lr:g}, batch size {self.batch_size})")
        if self.sparsity < 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise PrunekitError("--sparsity and --weight-decay must be >= 0 and momentum in [0, 1)")
        if not 0 <= self.distill_alpha <= 1 or self.distill_temperature <= 0:
            raise PrunekitError("distill_alpha must be in [0, 1] and distill_temperature > 0")
        if self.topk < 1:
            raise PrunekitError(f"--topk must be a whole number >= 1, got {self.topk}")
        check_device(self.device)

    @classmethod
    def recorded(cls, d: dict[str, Any] | None, source: str = "recorded training settings") -> "TrainConfig":
        """The recipe a checkpoint recorded (keys written by other prunekit versions are ignored);
        ``source`` names the file in error messages."""
        return cls.from_dict(d or {}, source=source, ignore_unknown=True)


def check_device(device: str) -> None:
    """Refuse a device torch cannot use here, in one line."""
    kind = device.split(":", 1)[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise PrunekitError(f"--device {device!r} is not cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise PrunekitError(f"--device {device}: no CUDA GPU is available here; use --device cpu")


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
