"""Step 4 of the pipeline: quantize a checkpoint to int8 and measure what deploying it gives.

The output folder is a copy of the checkpoint (still loadable by prunekit) plus ``model.onnx``
(fp32) and ``model.int8.onnx`` (int8, QDQ), both with a dynamic batch size. ``metrics.json``
gains the ONNX files' test accuracy, size and measured latency side by side.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from prunekit.deploy.evaluate import calibration_batches, onnx_accuracy
from prunekit.deploy.onnx_quant import QuantSettings, check_quantization_tools, quantize_onnx
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint, write_json
from prunekit.io.checkpoint import METRICS
from prunekit.io.export import export_model
from prunekit.io.output import check_output, staged_output
from prunekit.latency.platforms import get_platform
from prunekit.latency.platforms.onnx_base import OnnxPlatform
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.steps import check_data_fits, data_config_of

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


def _copy_checkpoint(src: Path, dst: Path) -> None:
    """Every visible file and folder of the checkpoint ``src`` into ``dst``."""
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))


def deployed_figures(path: Path, data_test, input_shape: Sequence[int], platform: OnnxPlatform, *,
                     threads: int, latency_batches: Sequence[int], min_time_s: float) -> dict[str, Any]:
    """Test accuracy, file size and latency (per batch size) of one ONNX file on ``platform``."""
    out: dict[str, Any] = {"file": path.name, "file_bytes": path.stat().st_size,
                           "test_accuracy": onnx_accuracy(path, data_test, platform=platform.name, threads=threads)}
    latency, noise = {}, {}
    for batch in latency_batches:
        r = platform.measure_file(path, torch.zeros(batch, *input_shape), threads=threads, min_time_s=min_time_s)
        latency[f"b{batch}"], noise[f"b{batch}"] = r.median_ms, r.noise
    out.update(latency_ms=latency, latency_noise=noise)
    return out


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def quantize_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    calibration_samples: int = 256,
    seed: int = 0,
    overwrite: bool = False,
    data_cfg: DataConfig | None = None,
    settings: QuantSettings | None = None,
    latency_batches: Sequence[int] = (1,),
    threads: int = 1,
    latency_platform: str = "onnxruntime-cpu",
    clock: str = "wall",
    min_time_s: float = 0.5,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Quantize ``checkpoint`` to int8 with ONNX Runtime's static quantization and write it all to ``out``.

    Calibration uses ``calibration_samples`` training samples drawn with ``seed`` from the data the
    checkpoint recorded (or ``data_cfg``). Both ONNX files are tested on the test split and timed on
    ``latency_platform`` with ``threads`` threads at each of ``latency_batches`` (on ``clock``: ``"wall"``, or
    ``"cpu"`` for one thread on a shared machine). ``out`` is built in
    a hidden staging folder and renamed into place; an existing non-empty ``out`` is refused unless
    ``overwrite``. Returns the new ``metrics.json`` (the checkpoint's metrics plus ``onnx_fp32``,
    ``onnx_int8`` and ``quantization``).
    """
    check_output(out, overwrite, inputs={"--checkpoint": checkpoint})
    check_quantization_tools()
    settings = settings or QuantSettings()
    settings.validate()
    runtime = get_platform(latency_platform, clock=clock)
    if not isinstance(runtime, OnnxPlatform):
        raise PrunekitError(f"latency platform {latency_platform} does not run ONNX files")
    record = runtime.record(threads)
    ckpt = load_checkpoint(checkpoint)
    data = (data_cfg or data_config_of(ckpt)).load()
    check_data_fits(ckpt, data)  # before any file is exported or calibrated
    log(data.describe())
    with staged_output(out, overwrite, keep_partial=False) as stage:
        _copy_checkpoint(Path(checkpoint), stage)
        fp32 = export_model(ckpt.model, ckpt.example_inputs(), stage / FP32_FILE, "onnx", dynamic_batch=True)
        calibration = calibration_batches(data.train, calibration_samples, seed)
        log(f"[quantize] calibrating on {sum(len(b) for b in calibration)} training samples (seed {seed}): "
            f"{settings.describe()}")
        int8 = quantize_onnx(fp32, stage / INT8_FILE, calibration, settings)
        figures = {}
        for key, path in (("onnx_fp32", fp32), ("onnx_int8", int8)):
            log(f"[quantize] testing and timing {path.name} on {runtime.name}")
            figures[key] = deployed_figures(path, data.test, ckpt.input_shape, runtime, threads=threads,
                                            latency_batches=latency_batches, min_time_s=min_time_s)
        quantization = {**settings.to_dict(), "calibration_samples": sum(len(b) for b in calibration),
                        "calibration_seed": seed, "calibration_split": "train", "onnxruntime": _ort_version()}
        metrics = {**ckpt.metrics, **figures, "quantization": quantization, "deploy_platform": record,
                   "int8_accuracy_drop": figures["onnx_fp32"]["test_accuracy"] - figures["onnx_int8"]["test_accuracy"]}
        write_json(stage / METRICS, metrics)
    return metrics
