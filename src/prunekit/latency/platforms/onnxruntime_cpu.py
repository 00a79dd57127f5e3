"""``onnxruntime-cpu``: the network exported to ONNX, run by ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.onnx_base import OnnxPlatform, Runner


def ort_session(path: str | Path, threads: int):
    """An ONNX Runtime CPU session of the file at ``path`` with ``threads`` intra-op threads (quiet logs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@register_platform("onnxruntime-cpu")
class OnnxRuntimeCpu(OnnxPlatform):
    """Timed ``InferenceSession.run`` with ``intra_op_num_threads`` pinned (one inter-op thread)."""

    requires = ("onnx", "onnxruntime")

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """Device, threads and the ONNX Runtime version."""
        record = super().record(threads)  # checks that the runtime is here first
        import onnxruntime as ort

        return {**record, "onnxruntime": ort.__version__}

    def runner(self, path: str | Path, threads: int | None) -> Runner:
        """An ONNX Runtime session of ``path``."""
        session = ort_session(path, threads or self.record(threads)["threads"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.ascontiguousarray(x)})[0]
