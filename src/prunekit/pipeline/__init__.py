"""The classic pipeline (1 train the base model, 2 prune, 3 fine-tune) as functions and registered steps;
the pipeline layer owns folders, logs and progress (algorithms do no file I/O)."""

from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import evaluate_checkpoint, fit_and_save, model_metrics, train_base
from prunekit.pipeline import steps_builtin  # noqa: F401,E402  (registers the built-in pipeline steps)
from prunekit.pipeline import quantize_step  # noqa: F401,E402  (step 4)
from prunekit.pipeline.run import RunPlan, list_steps, register_step, run_pipeline  # noqa: E402

__all__ = ["DataConfig", "RunPlan", "evaluate_checkpoint", "fit_and_save", "list_steps", "model_metrics",
           "register_step", "run_pipeline", "train_base"]
