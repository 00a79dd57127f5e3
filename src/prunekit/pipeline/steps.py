"""The pipeline's steps as plain functions (the CLI and the Python API both call these)."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from prunekit.data import DataBundle
from prunekit.data.validate import check_fits
from prunekit.errors import PrunekitError, first_line
from prunekit.io.output import check_output, staged_output, staging_dir
from prunekit.io import (
    Checkpoint, attach_input_shape, load_checkpoint, read_description, read_json, save_checkpoint, write_json,
)
from prunekit.models import create_model, spec_of
from prunekit.models.registry import check_model_name
from prunekit.pipeline.context import DataConfig
from prunekit.resources import count
from prunekit.training import TrainConfig, evaluate, seed_everything, topk_key, train
from prunekit.training.config import check_device
from prunekit.training.state import PROGRESS

TRAIN_LOG = "train_log.jsonl"
TRAIN_STATE = "train-state"


def model_metrics(model: nn.Module, data: DataBundle, device: str = "cpu", topk: int = 1) -> dict[str, Any]:
    """Test and validation accuracy (and top-k accuracy when ``topk`` > 1), MACs, FLOPs and parameters of ``model``.
    With another metric than accuracy (``data.task``), the accuracy fields hold it and ``metric`` names it."""
    res = count(model, data.example_inputs())
    test = evaluate(model, data.test, device=device, topk=topk, task=data.task)
    val = evaluate(model, data.val, device=device, topk=topk, task=data.task)
    model.to("cpu")
    key = topk_key(topk)
    extra = {f"test_{key}": test[key], f"val_{key}": val[key]} if topk > 1 else {}
    return {
        "test_accuracy": test["accuracy"],
        "val_accuracy": val["accuracy"],
        **extra,
        "test_loss": test["loss"],
        **({"metric": test["metric"]} if "metric" in test else {}),
        **res.to_dict(),
    }


def output_classes(model: nn.Module, input_shape: tuple[int, ...]) -> int | None:
    """How many class scores ``model`` outputs for one input of ``input_shape`` (None when its output is not
    a (batch, classes) tensor, e.g. a detector's)."""
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, *input_shape))
    except Exception:  # noqa: BLE001  (an odd model: the data check falls back to the input shape)
        return None
    finally:
        model.train(was_training)
    out = getattr(out, "logits", out)
    return int(out.shape[1]) if torch.is_tensor(out) and out.dim() == 2 else None


def check_data_fits(ckpt: Checkpoint, data: DataBundle, what: str = "checkpoint") -> None:
    """Refuse, before any work, data that does not suit the checkpoint (channels, image size, classes): one
    line naming the folder and the option to change."""
    check_fits(data, ckpt.input_shape, output_classes(ckpt.model, ckpt.input_shape), f"{what} {ckpt.path}")


def data_config_of(ckpt: Checkpoint) -> DataConfig:
    """The data settings a checkpoint was trained with (the defaults for one made without data)."""
    return DataConfig.from_dict(ckpt.meta.get("data") or {}, source=f"{ckpt.path}/model.json: meta.data")


def recorded_data_config(path: str | Path) -> DataConfig:
    """The data settings recorded in a checkpoint folder, read without building its model."""
    return DataConfig.from_dict(read_description(path).get("meta", {}).get("data") or {},
                                source=f"{path}/model.json: meta.data")


START = "start.json"
"""In an unfinished run's training state: a fingerprint of the weights it started from."""


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of the model's parameters and buffers (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_same_start(model: nn.Module, stage: Path) -> str:
    """The model's weights fingerprint; an unfinished run in ``stage`` is continued only from the weights it
    started from (another --checkpoint, or a step 2 redone with other settings, would be trained on in its place)."""
    fingerprint = weights_fingerprint(model)
    start = stage / TRAIN_STATE / START
    if start.is_file() and read_json(start).get("weights") != fingerprint:
        raise PrunekitError(f"{stage} holds an unfinished run that started from other weights (another --checkpoint, "
                            "or an input rebuilt since): delete it to start over, or run the command that started it")
    return fingerprint


def fit_and_save(
    model: nn.Module,
    data: DataBundle,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    out: str | Path,
    *,
    teacher: nn.Module | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    extra_meta: dict[str, Any] | None = None,
    desc: str = "train",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``model`` in place, evaluate it, save it as a checkpoint folder at ``out``; returns its metrics.

    The folder is built in a hidden sibling and renamed into place when complete; training state
    is saved there after every epoch, so the same call after a crash resumes from the last epoch.
    """
    fingerprint = _check_same_start(model, staging_dir(out))  # before the staging folder's own error note
    with staged_output(out, overwrite) as stage:
        state = stage / TRAIN_STATE
        if not (state / START).is_file() and not (state / PROGRESS).is_file():
            state.mkdir(parents=True, exist_ok=True)
            write_json(state / START, {"weights": fingerprint})
        if (state / PROGRESS).is_file():
            log(f"[{desc}] resuming the unfinished run in {stage}")
        attach_input_shape(model, data.input_shape)

        top = topk_key(train_cfg.topk)
        acc = (data.task.metric if data.task is not None else "accuracy").replace("accuracy", "acc")

        def on_epoch(r: dict) -> None:
            val = f", val {acc} {r['val_accuracy']:.4f}" if "val_accuracy" in r else ""
            if f"val_{top}" in r:
                val += f", val top-{train_cfg.topk} {r[f'val_{top}']:.4f}"
            train_k = f", train top-{train_cfg.topk} {r[f'train_{top}']:.4f}" if f"train_{top}" in r else ""
            log(f"[{desc}] epoch {r['epoch']}: loss {r['train_loss']:.4f}, train {acc} {r['train_accuracy']:.4f}{train_k}"
                f"{val}, {r['samples_per_s']:.0f} samples/s, {r['seconds']:.1f}s")

        t0 = time.perf_counter()
        history = train(model, data.train, train_cfg, val_split=data.val, augment=data.augment, teacher=teacher,
                        log_path=stage / TRAIN_LOG, progress=progress, desc=desc, on_epoch=on_epoch, state_dir=state,
                        task=data.task)
        seconds = time.perf_counter() - t0
        model.to("cpu").eval()
        metrics = model_metrics(model, data, topk=train_cfg.topk)
        metrics.update(train_seconds=sum(r["seconds"] for r in history) if history else seconds,
                       epochs=train_cfg.epochs)
        meta = {"data": data_cfg.to_dict(), "train": train_cfg.to_dict(), **(extra_meta or {})}
        save_checkpoint(stage, model, input_shape=data.input_shape, metrics=metrics, meta=meta)
        shutil.rmtree(state, ignore_errors=True)
    return metrics


def train_base(
    model_name: str,
    data_cfg: DataConfig,
    train_cfg: TrainConfig,
    out: str | Path,
    *,
    model_kwargs: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Step 1: build ``model_name`` for the dataset (starting from ``weights``, a file of your own, if
    given), train it and save it at ``out``; returns its metrics."""
    check_model_name(model_name)
    check_output(out, overwrite)
    data = data_cfg.load()
    log(data.describe())
    seed_everything(train_cfg.seed)
    try:
        model = create_model(model_name, data.num_classes, data.in_channels, data.input_size, weights=weights,
                             **(model_kwargs or {}))
    except TypeError as err:
        if not model_kwargs:
            raise
        raise PrunekitError(f"--model-arg: {model_name} does not take {sorted(model_kwargs)} ({err})") from None
    return fit_and_save(model, data, data_cfg, train_cfg, out, progress=progress, log=log, overwrite=overwrite)


def build_source(
    model_name: str,
    *,
    data_cfg: DataConfig | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Checkpoint:
    """A model built by name (e.g. ``timm:resnet18`` with your ``weights``) as an in-memory checkpoint that
    :func:`prunekit.pipeline.prune_step.prune_checkpoint` takes: sized for ``data_cfg``'s data and measured
    on it, or, without data, for ``input_shape`` ((C, H, W), or (L,) for token ids) and measured in
    resources only. Weights that ``weights`` does not give are initialised from ``seed`` (the same command
    gives the same model)."""
    check_model_name(model_name)
    data = None
    if data_cfg is not None:
        data = data_cfg.load()
        log(data.describe())
        classes, shape = data.num_classes, data.input_shape
    elif input_shape:
        classes, shape = num_classes, tuple(int(s) for s in input_shape)
    else:
        raise PrunekitError("a model built by name needs data (--dataset) or an input shape (--input-shape C H W)")
    channels, size = (shape[0], shape[1:]) if len(shape) == 3 else (3, (shape[-1], shape[-1]))
    seed_everything(seed)
    model = create_model(model_name, classes, channels, size, weights=weights, **(model_kwargs or {}))
    model.eval()
    attach_input_shape(model, shape)
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        if data is None:
            try:
                metrics = count(model, x).to_dict()
            except (RuntimeError, ValueError, TypeError, IndexError) as err:
                raise PrunekitError(f"{model_name} does not take an input of shape {list(shape)} (--input-shape): "
                                    f"{first_line(err)}") from None
        else:
            metrics = model_metrics(model, data)
    meta = {"data": data_cfg.to_dict() if data_cfg else None, "source": model_name,
            "weights": str(weights) if weights else None}
    return Checkpoint(model, Path(model_name), spec_of(model), shape, None, metrics, meta)


def evaluate_checkpoint(path: str | Path, data_cfg: DataConfig | None = None, device: str = "cpu") -> dict[str, Any]:
    """Re-measure a checkpoint on its data (or ``data_cfg``): accuracy, MACs, params."""
    check_device(device)
    ckpt = load_checkpoint(path)
    data = (data_cfg or data_config_of(ckpt)).load()
    check_data_fits(ckpt, data)
    topk = int(ckpt.meta.get("train", {}).get("topk") or 1)  # the setting it was trained with
    with torch.no_grad():
        return model_metrics(ckpt.model, data, device, topk=topk)
