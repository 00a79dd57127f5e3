"""Training and evaluation: a reproducible loop with BN sparsity (network slimming) and distillation."""

from prunekit.training.config import TrainConfig, make_optimizer
from prunekit.training.loop import evaluate, seed_everything, topk_key, train

__all__ = ["TrainConfig", "evaluate", "make_optimizer", "seed_everything", "topk_key", "train"]
