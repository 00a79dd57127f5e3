"""``openvino-cpu-int8``: the int8 QDQ model of ``onnxruntime-cpu-int8``, compiled and run by OpenVINO.

OpenVINO reads ONNX QuantizeLinear/DequantizeLinear pairs as FakeQuantize operations and its
low-precision transformations turn them into int8 kernels (``runtime_precisions`` of the compiled
model shows u8/i8 convolutions), so no other quantization tool (NNCF) is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.onnxruntime_int8 import quantized_copy
from prunekit.latency.platforms.openvino_cpu import OpenVinoCpu


@register_platform("openvino-cpu-int8")
class OpenVinoInt8(OpenVinoCpu):
    """Export, ONNX Runtime's ``quantize_static`` (as ``onnxruntime-cpu-int8``), then OpenVINO."""

    requires = ("onnx", "onnxruntime", "openvino")
    extra = "onnx,openvino"

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """As ``openvino-cpu``, with the quantization settings instead of fp32."""
        from prunekit.deploy.onnx_quant import QuantSettings

        return {**super().record(threads), "precision": "int8", "quantization": QuantSettings().describe()}

    def prepare(self, model: nn.Module, example_inputs: torch.Tensor, folder: Path) -> Path:
        return quantized_copy(super().prepare(model, example_inputs, folder), example_inputs)
