"""Measured latency of a model on a platform: torch on the CPU or a CUDA GPU, or ONNX Runtime on the CPU.

Robust on a shared, noisy machine: warm-up runs first, then repeated timings until both a
minimum count and a minimum time are reached; the median is the figure, the interquartile range
says how noisy it was.
"""

from __future__ import annotations

import os
import platform as _platform
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from prunekit.errors import PrunekitError

PLATFORMS = ("torch-cpu", "torch-cuda", "onnxruntime-cpu")


@dataclass
class LatencyResult:
    """One latency measurement: milliseconds per forward pass of the example batch."""

    median_ms: float
    min_ms: float
    iqr_ms: float
    runs: int
    platform: dict[str, Any] = field(default_factory=dict)

    @property
    def noise(self) -> float:
        """Interquartile range relative to the median (0.05 = the middle half of runs within 5 %)."""
        return self.iqr_ms / self.median_ms if self.median_ms else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "noise": self.noise}

    def __str__(self) -> str:
        return (f"{self.median_ms:.3f} ms median ({self.min_ms:.3f} min, IQR {self.iqr_ms:.3f} = {self.noise:.1%}, "
                f"{self.runs} runs) on {self.platform.get('name')}")


def cpu_name() -> str:
    """This machine's CPU model (e.g. ``AMD EPYC``), as recorded with every CPU figure."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


@contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Run the block with torch's CPU thread count set to ``threads`` (if given); yields the count in use and
    restores the previous one afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


_ALLOCATOR: str | None = None


def steady_allocator() -> str:
    """Make this process keep freed activation memory instead of returning it to the OS (glibc only).

    With glibc's defaults, eager PyTorch gives large activation buffers back to the OS after a
    forward pass and page-faults them in again in the next one, so the same network measures up to
    twice as slow depending on what the process did before (a zoo MobileNetV2 at batch 8: 21 ms
    or 40 ms). A long-running server with jemalloc or tcmalloc does not pay this; prunekit times
    that steady state by raising glibc's mmap and trim thresholds, once, for the whole process.
    Returns a description of the allocator setting (recorded with every torch-cpu figure).
    """
    global _ALLOCATOR
    if _ALLOCATOR is None:
        _ALLOCATOR = "default"
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_threshold = -1, -3
            if libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30):
                _ALLOCATOR = "glibc, mmap threshold 32 MiB, trim threshold 1 GiB"
        except (OSError, AttributeError):  # not glibc: nothing to steady
            pass
    return _ALLOCATOR


def platform_record(platform: str, threads: int | None = None) -> dict[str, Any]:
    """What identifies a platform's timings: its name, device, thread count and library version."""
    if platform not in PLATFORMS:
        raise PrunekitError(f"unknown platform {platform!r}; valid platforms: {', '.join(PLATFORMS)}")
    if platform == "torch-cpu":
        return {"name": platform, "device": cpu_name(), "threads": threads or torch.get_num_threads(),
                "torch": torch.__version__, "allocator": steady_allocator()}
    if platform == "torch-cuda":
        if not torch.cuda.is_available():
            raise PrunekitError("platform torch-cuda needs a CUDA GPU and a CUDA build of torch; none is available "
                                "here (use torch-cpu or onnxruntime-cpu)")
        return {"name": platform, "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                "cuda": torch.version.cuda}
    try:
        import onnxruntime as ort
    except ImportError:
        raise PrunekitError("platform onnxruntime-cpu needs ONNX Runtime: pip install 'prunekit[onnx]'") from None
    return {"name": platform, "device": cpu_name(), "threads": threads or torch.get_num_threads(),
            "onnxruntime": ort.__version__}


def _summarise(times_s: list[float], record: dict[str, Any]) -> LatencyResult:
    ms = sorted(t * 1000 for t in times_s)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return LatencyResult(statistics.median(ms), ms[0], q[2] - q[0], len(ms), record)


def _wall_clock(run: Callable[[], Any]) -> Callable[[], float]:
    """Time one call of ``run`` with the wall clock (seconds)."""
    def timed() -> float:
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0

    return timed


def _repeat(timed: Callable[[], float], warmup: int, repeats: int, min_time_s: float) -> list[float]:
    """``warmup`` untimed calls, then timed ones until ``repeats`` runs and ``min_time_s`` seconds (capped at 100x repeats)."""
    for _ in range(warmup):
        timed()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        times.append(timed())
        if len(times) >= 100 * repeats:
            break
    return times


def measure(
    model: nn.Module,
    example_inputs: torch.Tensor,
    platform: str = "torch-cpu",
    *,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    min_time_s: float = 0.5,
) -> LatencyResult:
    """Latency of one forward pass of ``example_inputs`` (its batch size is the batch) on ``platform``.

    ``threads`` pins the CPU thread count (default: torch's current setting); it is recorded
    with the device name, library versions and batch size in ``result.platform``. At least
    ``repeats`` timed runs and ``min_time_s`` seconds follow ``warmup`` untimed runs.
    """
    if platform not in PLATFORMS:
        raise PrunekitError(f"unknown platform {platform!r}; valid platforms: {', '.join(PLATFORMS)}")
    model = model.eval()
    batch = int(example_inputs.shape[0])
    if platform == "torch-cpu":
        return _measure_torch_cpu(model, example_inputs, threads, warmup, min_time_s, batch)
    if platform == "torch-cuda":
        return _measure_cuda(model, example_inputs, warmup, repeats, min_time_s, batch)
    return _measure_onnxruntime(model, example_inputs, threads, warmup, repeats, min_time_s, batch)


def _measure_torch_cpu(model, example_inputs, threads, warmup, min_time_s, batch) -> LatencyResult:
    from torch.utils.benchmark import Timer

    steady_allocator()
    with pinned_threads(threads) as n, torch.inference_mode():
        model_cpu, x = model.cpu(), example_inputs.cpu()
        for _ in range(warmup):
            model_cpu(x)
        timer = Timer(stmt="model(x)", globals={"model": model_cpu, "x": x}, num_threads=n)
        m = timer.blocked_autorange(min_run_time=min_time_s)
    # each entry of m.times is the mean of one block of m.number_per_run runs
    result = _summarise(list(m.times), {**platform_record("torch-cpu", n), "batch_size": batch})
    result.runs = len(m.times) * m.number_per_run
    return result


def _measure_cuda(model, example_inputs, warmup, repeats, min_time_s, batch) -> LatencyResult:
    record = {**platform_record("torch-cuda"), "batch_size": batch}
    device = torch.device("cuda")
    model_gpu, x = model.to(device), example_inputs.to(device)

    def timed() -> float:  # CUDA events time the GPU's work, not the launch
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        model_gpu(x)
        end.record()
        torch.cuda.synchronize()
        return begin.elapsed_time(end) / 1000

    with torch.inference_mode():
        times = _repeat(timed, warmup, repeats, min_time_s)
    model.cpu()
    return _summarise(times, record)


def _measure_onnxruntime(model, example_inputs, threads, warmup, repeats, min_time_s, batch) -> LatencyResult:
    record = {**platform_record("onnxruntime-cpu", threads), "batch_size": batch}
    import onnxruntime as ort
    from prunekit.io.export import export_model

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_model(model.cpu(), example_inputs.cpu(), path, "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = record["threads"]
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: example_inputs.cpu().numpy()}
    times = _repeat(_wall_clock(lambda: session.run(None, feed)), warmup, repeats, min_time_s)
    return _summarise(times, record)
