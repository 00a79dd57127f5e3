"""``onnxruntime-cpu-int8``: the network exported, statically quantized to int8 (QDQ), run by ONNX Runtime.

Quantization is ONNX Runtime's own (``quantize_static``, per-channel weights, see
:mod:`prunekit.deploy.onnx_quant`), calibrated on random inputs of the example's shape: the scales
do not change which kernels run, so this times the network as it will be deployed without needing
data. ``prunekit quantize`` calibrates on real data for accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.onnxruntime_cpu import OnnxRuntimeCpu


def quantized_copy(fp32: Path, example_inputs: torch.Tensor) -> Path:
    """``fp32`` quantized with prunekit's default settings, calibrated on two random batches; returns the new file."""
    from prunekit.deploy.onnx_quant import QuantSettings, quantize_onnx

    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(example_inputs.shape, generator=gen).numpy() for _ in range(2)]
    return quantize_onnx(fp32, fp32.with_name(fp32.stem + ".int8.onnx"), batches, QuantSettings())


@register_platform("onnxruntime-cpu-int8")
class OnnxRuntimeInt8(OnnxRuntimeCpu):
    """Export, ``quantize_static`` (QDQ, uint8 activations, int8 per-channel weights), then ONNX Runtime."""

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """As ``onnxruntime-cpu``, plus the quantization settings."""
        from prunekit.deploy.onnx_quant import QuantSettings

        return {**super().record(threads), "quantization": QuantSettings().describe()}

    def prepare(self, model: nn.Module, example_inputs: torch.Tensor, folder: Path) -> Path:
        return quantized_copy(super().prepare(model, example_inputs, folder), example_inputs)
