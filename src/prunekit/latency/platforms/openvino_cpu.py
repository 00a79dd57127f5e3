"""``openvino-cpu``: the network exported to ONNX, compiled and run by OpenVINO's CPU plugin at fp32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.onnx_base import OnnxPlatform, Runner


def compile_openvino(path: str | Path, threads: int):
    """The ONNX file compiled for OpenVINO's CPU plugin: ``threads`` inference threads, latency mode, one stream,
    fp32 arithmetic (OpenVINO would pick bf16 by itself on CPUs that have it), no thread pinning (shared machines)."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
              "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False}
    return core.compile_model(core.read_model(str(path)), "CPU", config)


def runtime_precisions(compiled) -> dict[str, int]:
    """How many layers of a compiled model run at each precision, e.g. ``{"Convolution u8": 52, ...}``:
    the way to see whether OpenVINO chose int8 kernels."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" not in info or "runtimePrecision" not in info:
            continue
        key = f"{info['layerType'].astype(str)} {info['runtimePrecision'].astype(str)}"
        counts[key] = counts.get(key, 0) + 1
    return counts


@register_platform("openvino-cpu")
class OpenVinoCpu(OnnxPlatform):
    """Timed synchronous ``InferRequest.infer`` of the compiled ONNX export."""

    requires = ("onnx", "openvino")
    extra = "openvino"

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """Device, threads, the OpenVINO version and the arithmetic precision."""
        record = super().record(threads)  # checks that the runtime is here first
        import openvino as ov

        return {**record, "openvino": ov.get_version(), "precision": "f32"}

    def runner(self, path: str | Path, threads: int | None) -> Runner:
        """An infer request of ``path`` compiled by :func:`compile_openvino`."""
        compiled = compile_openvino(path, threads or self.record(threads)["threads"])
        request = compiled.create_infer_request()

        def run(x: np.ndarray) -> np.ndarray:
            request.infer({0: np.ascontiguousarray(x)})
            return request.get_output_tensor(0).data.copy()
        return run
