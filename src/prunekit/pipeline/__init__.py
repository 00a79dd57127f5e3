"""The classic pipeline (1 train the base model, 2 prune, 3 fine-tune) as functions."""

from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import evaluate_checkpoint, fit_and_save, model_metrics, train_base

__all__ = ["DataConfig", "evaluate_checkpoint", "fit_and_save", "model_metrics", "train_base"]
