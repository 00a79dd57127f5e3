"""Step 2 with NetAdapt: adapt a checkpoint to a budget on its own data (short-term fine-tuning on
the training split, scoring on the hold-out validation split), in a resumable working folder; the
final network is tested once and can be written as a checkpoint (``--out``)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Callable

from prunekit.algorithms.netadapt import NetAdaptConfig, NetAdaptResult
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint, save_checkpoint
from prunekit.io.output import check_output, clean_orphans, occupied, set_aside, staged_output
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.netadapt_run import NetAdapt, resolve_config
from prunekit.pipeline.netadapt_task import DataEvaluate, DataFinetune, calibration_batches, data_task
from prunekit.pipeline.steps import check_data_fits, data_config_of
from prunekit.pipeline.workdir import WorkDir
from prunekit.training import evaluate
from prunekit.training.config import DEFAULT_BATCH_SIZE, check_device

__all__ = ["DataEvaluate", "DataFinetune", "NetAdapt", "calibration_batches", "data_task", "netadapt_checkpoint"]


def _resumed_inputs(work: WorkDir, checkpoint: str | Path | None, data_cfg: DataConfig | None):
    """The checkpoint and data settings a resumed run was started with (other data is refused)."""
    meta = work.config().get("meta", {})
    saved_data = DataConfig.recorded(meta.get("data"), f"{work.path}/config.json: meta.data")
    if data_cfg is not None and data_cfg != saved_data:
        changed = ", ".join(k for k, v in data_cfg.to_dict().items() if saved_data.to_dict().get(k) != v)
        raise PrunekitError(f"--resume: {work.path} was started with other data settings ({changed}); resume with "
                            "the same data, or start a new run in another --work-dir")
    source = meta.get("source")
    if checkpoint is not None and source is not None and Path(checkpoint).resolve() != Path(source).resolve():
        raise PrunekitError(f"--resume: {work.path} adapts {source}, not --checkpoint {checkpoint}: drop --checkpoint "
                            "to continue it, or start a new run in another --work-dir")
    if checkpoint is None and source is not None and not Path(source).is_dir():
        raise PrunekitError(f"{work.path}/config.json: meta.source {source} is not a folder (the checkpoint the run "
                            "adapts): put it back, or give --checkpoint with the same checkpoint")
    return checkpoint or source, saved_data


def _check_outputs(work: WorkDir, resuming: bool, checkpoint: str | Path | None, out: str | Path | None,
                   overwrite: bool) -> None:
    """Refuse, before any work, a working folder or --out that holds something (unless resuming or told to
    overwrite), or that is (or holds) the checkpoint or each other; what a killed run left in the working folder
    is tidied up first."""
    clean_orphans(work.path)
    if not resuming and work.exists() and not overwrite:
        raise PrunekitError(f"--work-dir {work.path} already holds a NetAdapt run: pass --resume to continue it, "
                            "--overwrite to replace it, or choose another --work-dir")
    if not resuming:
        check_output(work.path, overwrite, "--work-dir", inputs={"--checkpoint": checkpoint})
    if out is not None:
        check_output(out, overwrite, inputs={"--checkpoint": checkpoint, "--work-dir": work.path})


def netadapt_checkpoint(
    checkpoint: str | Path | None,
    work_dir: str | Path,
    *,
    options: dict[str, Any] | None = None,
    config: NetAdaptConfig | None = None,
    resume: bool = False,
    data_cfg: DataConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    executor=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> NetAdaptResult:
    """Run (or resume) NetAdapt on a checkpoint folder; the final metrics include test accuracy.

    ``out``: also write the final network as a checkpoint folder there. An existing ``work_dir`` (or
    ``out``) is replaced only with ``overwrite``; with ``resume`` the run in ``work_dir`` continues.
    """
    check_device(device)
    work = WorkDir(work_dir)
    with work.held():  # before anything in it is read, tidied or set aside
        resuming = resume and work.exists()
        if resume and not resuming:
            log(f"nothing to resume in {work_dir}: starting a new run")
        if resuming:
            checkpoint, data_cfg = _resumed_inputs(work, checkpoint, data_cfg)
        if checkpoint is None:
            raise PrunekitError("--checkpoint is required (except when resuming)")
        _check_outputs(work, resuming, checkpoint, out, overwrite)
        ckpt = load_checkpoint(checkpoint)
        data_cfg = data_cfg or data_config_of(ckpt)
        cfg = resolve_config(work if resuming else None, config, dict(options or {}))
        cfg.validate()
        data = data_cfg.load()
        check_data_fits(ckpt, data)
        task = data_task(data, cfg, batch_size=batch_size, device=device, teacher=copy.deepcopy(ckpt.model))
        meta = {**ckpt.meta, "data": data_cfg.to_dict(), "source": str(checkpoint)}
        search = NetAdapt(ckpt.model, ckpt.example_inputs(), finetune=task.finetune, evaluate=task.evaluate,
                          score=task.score, calibration_data=task.calibration_data, work_dir=work_dir, resume=resuming,
                          executor=executor, progress=progress, log=log, meta=meta, config=cfg,
                          metric_name=data.task.metric)
        old = set_aside(Path(work_dir)) if not resuming and occupied(Path(work_dir)) else None
        try:
            result = search.run()
        except BaseException:
            if old is not None:
                clean_orphans(work.path)  # the replaced folder goes back if the new run saved nothing yet
            raise
        _finish(result, work, data, device, out, overwrite, meta)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return result


def _finish(result: NetAdaptResult, work: WorkDir, data, device: str, out: str | Path | None, overwrite: bool,
            meta: dict[str, Any]) -> None:
    """Test the final network, record it in the working folder, and write it to ``out`` when asked."""
    test = evaluate(result.model, data.test, device=device, task=data.task)
    result.model.to("cpu")
    result.metrics.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
    work.write_metrics(result.metrics)
    if out is not None:
        with staged_output(out, overwrite, keep_partial=False) as stage:
            save_checkpoint(stage, result.model, metrics=result.metrics,
                            meta={**meta, "netadapt": {"work_dir": str(work.path), "iteration": len(result.history)}})
