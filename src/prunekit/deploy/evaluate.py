"""Data for deployment checks: a seeded calibration sample of a split, and top-1 accuracy of an ONNX file
run by a latency platform's runtime (ONNX Runtime by default, OpenVINO too)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from prunekit.data.bundle import Split, TensorSplit, batches
from prunekit.errors import PrunekitError
from prunekit.latency.platforms import get_platform
from prunekit.latency.platforms.onnx_base import OnnxPlatform


def _sample(split: Split, count: int, seed: int) -> Split:
    """``count`` samples of ``split`` drawn without replacement with ``seed`` (all of it when smaller)."""
    n = len(split)
    if count >= n:
        return split
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].sort().values
    if isinstance(split, TensorSplit):
        return split.subset(idx)
    return torch.utils.data.Subset(split, idx.tolist())


def calibration_batches(split: Split, count: int, seed: int, batch_size: int = 32) -> list[np.ndarray]:
    """A seeded sample of ``count`` inputs of ``split`` (no augmentation) as float32 batches, for calibration."""
    if count < 1:
        raise PrunekitError(f"--calibration-samples must be >= 1, got {count}")
    if len(split) == 0:
        raise PrunekitError("the training split is empty: nothing to calibrate the quantization on")
    return [x.numpy().astype(np.float32) for x, _ in batches(_sample(split, count, seed), batch_size)]


def _padded(x: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, int]]:
    """``x`` in chunks of exactly ``size`` rows (the last padded with zeros), with each chunk's real row count."""
    for start in range(0, len(x), size):
        chunk = x[start:start + size]
        real = len(chunk)
        if real < size:
            chunk = np.concatenate([chunk, np.zeros((size - real, *chunk.shape[1:]), chunk.dtype)])
        yield chunk, real


def _static_batch(path: Path) -> int | None:
    """The input's batch size fixed in the ONNX file (None: dynamic)."""
    import onnx

    dim = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def onnx_accuracy(path: str | Path, split: Split, *, platform: str = "onnxruntime-cpu", threads: int | None = None,
                  batch_size: int = 256) -> float:
    """Top-1 accuracy (0-1) of the ONNX classifier at ``path`` on ``split``, run by ``platform``'s runtime.

    A file exported with a fixed batch size is fed batches of exactly that size (the last one padded)."""
    runtime = get_platform(platform)
    if not isinstance(runtime, OnnxPlatform):
        raise PrunekitError(f"platform {platform} does not run ONNX files")
    if len(split) == 0:
        raise PrunekitError("the test split is empty: no accuracy to measure")
    run = runtime.runner(path, threads)
    fixed = _static_batch(Path(path))
    correct = total = 0
    for x, y in batches(split, batch_size):
        x = x.numpy().astype(np.float32)
        preds = []
        for chunk, real in _padded(x, fixed) if fixed else [(x, len(x))]:
            preds.append(np.asarray(run(chunk))[:real].argmax(axis=1))
        correct += int((np.concatenate(preds) == y.numpy()).sum())
        total += len(y)
    return correct / total
