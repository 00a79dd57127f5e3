"""Training and evaluation: a reproducible loop with BN sparsity (network slimming) and distillation, for any
task's loss and metric (classification by default; segmentation and your own in ``training.tasks``)."""

from prunekit.training.config import TrainConfig, make_optimizer
from prunekit.training.inference import memory_format
from prunekit.training.loop import evaluate, seed_everything, topk_key, train
from prunekit.training.tasks import Objective, list_tasks, make_objective

__all__ = ["Objective", "TrainConfig", "evaluate", "list_tasks", "make_objective", "make_optimizer", "memory_format",
           "seed_everything", "topk_key", "train"]
