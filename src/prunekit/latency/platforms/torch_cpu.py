"""``torch-cpu``: eager PyTorch on this machine's CPU, timed by ``torch.utils.benchmark``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.base import Platform
from prunekit.latency.timing import LatencyResult, pinned_threads, steady_allocator, summarise, time_blocks


@register_platform("torch-cpu")
class TorchCpu(Platform):
    """Eager torch on the CPU: ``Timer.blocked_autorange`` after warm-up, thread count pinned and restored."""

    table_trials = 3
    """A small layer's timing here has a slow mode that lasts a while (one 20 ms timing of a 14x14 convolution
    read 67 or 118 us at random): the lowest of three timings taken apart keeps a table's entries on one mode."""

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """Device, threads, torch version and the allocator setting (see :func:`steady_allocator`)."""
        return {**super().record(threads), "torch": torch.__version__, "allocator": steady_allocator()}

    def session(self, model: nn.Module, example_inputs: torch.Tensor, threads: int | None):
        model_cpu, x = model.eval().cpu(), example_inputs.cpu()

        def run() -> None:
            with torch.inference_mode():
                model_cpu(x)
        return run

    def measure(self, model: nn.Module, example_inputs: torch.Tensor, *, threads: int | None = None,
                warmup: int = 10, repeats: int = 30, min_time_s: float = 0.5) -> LatencyResult:
        """``blocked_autorange`` for at least ``min_time_s`` (``repeats`` does not apply: blocks are autoranged);
        with the cpu clock, single runs timed by CPU time instead."""
        from torch.utils.benchmark import Timer

        steady_allocator()
        if self.clock == "cpu":
            with pinned_threads(threads) as n:
                return super().measure(model, example_inputs, threads=n, warmup=warmup, repeats=repeats,
                                       min_time_s=min_time_s)
        with pinned_threads(threads) as n, torch.inference_mode():
            model_cpu, x = model.eval().cpu(), example_inputs.cpu()
            for _ in range(warmup):
                model_cpu(x)
            timer = Timer(stmt="model(x)", globals={"model": model_cpu, "x": x}, num_threads=n)
            m = timer.blocked_autorange(min_run_time=min_time_s)
        # each entry of m.times is the mean of one block of m.number_per_run runs
        result = summarise(list(m.times), {**self.record(n), "batch_size": int(example_inputs.shape[0])})
        result.runs = len(m.times) * m.number_per_run
        return result

    def time_layer(self, module: nn.Module, x: torch.Tensor, threads: int | None, total_s: float) -> float:
        """A lean loop (median of blocks of ~``total_s / 9`` s): ``blocked_autorange``'s own cost (~0.1 s a
        call) would dominate a table of ten thousand small layers."""
        return time_blocks(module.eval(), x, threads, total_s, clock=self.clock)
