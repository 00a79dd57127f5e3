"""Platforms that run the network exported to ONNX (ONNX Runtime, OpenVINO, a user's device command).

Each exports the network (or one layer, for a lookup table) to an ONNX file in a temporary folder,
optionally transforms it (int8 quantization), and loads it into its runtime; the loaded callable
is what is timed. :meth:`OnnxPlatform.runner` also serves to run a given ONNX file (accuracy of
an exported or quantized model).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from prunekit.latency.platforms.base import Platform
from prunekit.latency.timing import LatencyResult, repeat, summarise, timed

Runner = Callable[[np.ndarray], np.ndarray]
"""Runs a loaded ONNX network on one input array and returns its (first) output."""


class OnnxPlatform(Platform):
    """Export to ONNX (opset 17, the shapes of the example inputs), :meth:`prepare`, then :meth:`runner`."""

    requires: tuple[str, ...] = ("onnx",)
    extra = "onnx"

    def prepare(self, model: nn.Module, example_inputs: torch.Tensor, folder: Path) -> Path:
        """Write the ONNX file this platform runs into ``folder``; returns its path (plain fp32 export here)."""
        from prunekit.io.export import export_model

        return export_model(model.eval().cpu(), example_inputs.cpu(), folder / "model.onnx", "onnx")

    def runner(self, path: str | Path, threads: int | None) -> Runner:
        """Load the ONNX file at ``path`` into this platform's runtime."""
        raise NotImplementedError

    def session(self, model: nn.Module, example_inputs: torch.Tensor, threads: int | None) -> Callable[[], Any]:
        with tempfile.TemporaryDirectory(prefix="prunekit-onnx-") as tmp:
            run = self.runner(self.prepare(model, example_inputs, Path(tmp)), threads)
        x = example_inputs.cpu().numpy()
        return lambda: run(x)

    def measure_file(self, path: str | Path, example_inputs: torch.Tensor, *, threads: int | None = None,
                     warmup: int = 10, repeats: int = 30, min_time_s: float = 0.5) -> LatencyResult:
        """Latency of an existing ONNX file on this platform's runtime (the file is run as it is)."""
        record = {**self.record(threads), "batch_size": int(example_inputs.shape[0])}
        run, x = self.runner(path, record.get("threads")), example_inputs.cpu().numpy()
        return summarise(repeat(timed(lambda: run(x), self.clock), warmup, repeats, min_time_s), record)
