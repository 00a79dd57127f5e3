"""Step 2 (prune a checkpoint) and step 3 (fine-tune it), with before/after reports."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Sequence

from prunekit.algorithms.oneshot import PruneConfig
from prunekit.errors import PrunekitError
from prunekit.io import Checkpoint, load_checkpoint, save_checkpoint
from prunekit.io.output import check_output, staged_output
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import check_data_fits, data_config_of, fit_and_save, model_metrics
from prunekit.reports import format_table
from prunekit.training import TrainConfig, seed_everything


def group_widths(model, example_inputs, exclude: Sequence[str] = ()) -> dict[str, int]:
    """Current width of every prunable channel group of ``model`` (the model is not changed)."""
    from prunekit.structure import analyze

    return {g.name: g.channels for g in analyze(copy.deepcopy(model), example_inputs, exclude=exclude).groups}


def widths_table(before: dict[str, int], after: dict[str, int]) -> str:
    """Per-group widths before and after, only the groups that changed (or all if none did)."""
    rows = [[name, w, after.get(name, w), f"{after.get(name, w) / w:.0%}"] for name, w in before.items()
            if after.get(name, w) != w]
    return format_table(rows or [["(no group changed)", "", "", ""]], ["group", "before", "after", "kept"])


def _check_paths(src: str | Path | Checkpoint, out: str | Path, overwrite: bool) -> None:
    """Refuse to write over the input, or over existing work without ``overwrite``."""
    if isinstance(src, Checkpoint):  # built in memory (prunekit prune --model)
        check_output(out, overwrite)
        return
    check_output(out, overwrite, inputs={"--checkpoint": src})


def _open(src: str | Path | Checkpoint, data_cfg: DataConfig | None):
    """The input checkpoint, its data settings and data (None, None for a model made without data)."""
    ckpt = src if isinstance(src, Checkpoint) else load_checkpoint(src)
    if data_cfg is None and "data" in ckpt.meta and ckpt.meta["data"] is None:
        return ckpt, None, None
    data_cfg = data_cfg or data_config_of(ckpt)
    data = data_cfg.load()
    check_data_fits(ckpt, data)
    return ckpt, data_cfg, data


def _metrics(model, data, x) -> dict[str, Any]:
    """Accuracy and resources on the data, or only resources when there is none."""
    if data is None:
        from prunekit.resources import count

        return count(model, x).to_dict()
    return model_metrics(model, data)


def prune_checkpoint(
    checkpoint: str | Path | Checkpoint,
    out: str | Path,
    config: PruneConfig | None = None,
    *,
    data_cfg: DataConfig | None = None,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Prune a checkpoint folder (or an in-memory one from :func:`prunekit.pipeline.steps.build_source`)
    one-shot with ``config`` (or its fields as keyword arguments) and save the result at ``out``; returns
    before/after metrics."""
    from prunekit.algorithms import prune
    from prunekit.criteria import needs_gradients
    from prunekit.data import batches

    cfg = (config or PruneConfig()).replace(**settings)
    cfg.validate()
    _check_paths(checkpoint, out, overwrite)
    ckpt, data_cfg, data = _open(checkpoint, data_cfg)
    x = ckpt.example_inputs()
    grad_data = None
    if needs_gradients(cfg.criterion):
        import torch

        if data is None:
            raise PrunekitError(f"criterion {cfg.criterion!r} needs data: give --dataset")
        grad_data = batches(data.train, 64, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed))
    pruned = prune(ckpt.model, x, data=grad_data, **cfg.kwargs())
    before = ckpt.metrics if "macs" in ckpt.metrics else _metrics(ckpt.model, data, x)
    after = _metrics(pruned, data, x)
    parent = ckpt.meta.get("source") if isinstance(checkpoint, Checkpoint) else str(checkpoint)
    meta = {**ckpt.meta, "data": data_cfg.to_dict() if data_cfg else None, "parent": parent, "prune": cfg.to_dict()}
    with staged_output(out, overwrite, keep_partial=False) as stage:
        save_checkpoint(stage, pruned, metrics=after, meta=meta)
    log(widths_table(group_widths(ckpt.model, x, cfg.exclude), group_widths(pruned, x, cfg.exclude)))
    return {"before": before, "after": after}


def finetune_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    train_cfg: TrainConfig,
    *,
    teacher: str | Path | None = None,
    data_cfg: DataConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Fine-tune a (pruned) checkpoint, optionally distilling from a ``teacher`` checkpoint; save at ``out``."""
    _check_paths(checkpoint, out, overwrite)
    ckpt, data_cfg, data = _open(checkpoint, data_cfg)
    if data is None:
        raise PrunekitError(f"{checkpoint} was made without data: fine-tuning needs it, give --dataset")
    teacher_model = None
    if teacher:
        teacher_ckpt = load_checkpoint(teacher)
        check_data_fits(teacher_ckpt, data, "--teacher")
        teacher_model = teacher_ckpt.model
    seed_everything(train_cfg.seed)
    before = ckpt.metrics if "test_accuracy" in ckpt.metrics else model_metrics(ckpt.model, data)
    after = fit_and_save(ckpt.model, data, data_cfg, train_cfg, out, teacher=teacher_model, progress=progress,
                         log=log, desc="finetune", overwrite=overwrite,
                         extra_meta={k: v for k, v in ckpt.meta.items() if k not in ("data", "train")} | {
                             "parent": str(checkpoint), "teacher": str(teacher) if teacher else None})
    return {"before": before, "after": after}
