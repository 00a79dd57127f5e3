"""``torch-cuda``: eager PyTorch on a CUDA GPU, timed by CUDA events."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.base import Platform
from prunekit.latency.timing import LatencyResult, repeat, summarise


@register_platform("torch-cuda")
class TorchCuda(Platform):
    """CUDA events around each call, after warm-up (only where a GPU exists)."""

    def __init__(self, clock: str = "wall", **options) -> None:
        super().__init__(clock, **options)
        if clock != "wall":
            raise PrunekitError("platform torch-cuda times the GPU with CUDA events: the cpu clock does not apply")

    def check(self) -> None:
        """A CUDA build of torch and a visible GPU."""
        if not torch.cuda.is_available():
            raise PrunekitError("platform torch-cuda needs a CUDA GPU and a CUDA build of torch; none is available "
                                "here (use torch-cpu or onnxruntime-cpu)")

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """The GPU's name, torch and CUDA versions."""
        self.check()
        return {"name": self.name, "device": torch.cuda.get_device_name(), "clock": "cuda events",
                "torch": torch.__version__, "cuda": torch.version.cuda}

    def measure(self, model: nn.Module, example_inputs: torch.Tensor, *, threads: int | None = None,
                warmup: int = 10, repeats: int = 30, min_time_s: float = 0.5) -> LatencyResult:
        """CUDA events time the GPU's work, not the launch; the model goes back to the CPU afterwards."""
        record = {**self.record(), "batch_size": int(example_inputs.shape[0])}
        device = torch.device("cuda")
        model_gpu, x = model.eval().to(device), example_inputs.to(device)

        def timed() -> float:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            model_gpu(x)
            end.record()
            torch.cuda.synchronize()
            return begin.elapsed_time(end) / 1000

        try:
            with torch.inference_mode():
                times = repeat(timed, warmup, repeats, min_time_s)
        finally:
            model.cpu()
        return summarise(times, record)
