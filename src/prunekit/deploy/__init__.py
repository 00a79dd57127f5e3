"""Deployment: post-training int8 quantization of a checkpoint with ONNX Runtime's tools, and accuracy and
latency of the exported fp32 and int8 ONNX files (``prunekit quantize``, ``prunekit.quantize``)."""

from __future__ import annotations

from typing import Any

from prunekit.deploy.evaluate import calibration_batches, onnx_accuracy
from prunekit.deploy.onnx_quant import QuantSettings, quantize_onnx


def __getattr__(name: str) -> Any:
    # the checkpoint step reads data settings through the pipeline: imported on use, so that the latency
    # platforms can use the quantizer without importing the pipeline
    if name in ("quantize_checkpoint", "FP32_FILE", "INT8_FILE"):
        from prunekit.deploy import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'prunekit.deploy' has no attribute {name!r}")


__all__ = ["FP32_FILE", "INT8_FILE", "QuantSettings", "calibration_batches", "onnx_accuracy", "quantize_checkpoint",
           "quantize_onnx"]
