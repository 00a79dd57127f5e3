"""Timing primitives shared by every latency platform: the result record, repeated wall-clock runs,
thread pinning, and the steady-allocator setting that keeps eager torch timings stable."""

from __future__ import annotations

import platform as _platform
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch

from prunekit.errors import PrunekitError


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


def summarise(times_s: list[float], record: dict[str, Any]) -> LatencyResult:
    """Median, minimum and interquartile range of run times given in seconds."""
    ms = sorted(t * 1000 for t in times_s)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return LatencyResult(statistics.median(ms), ms[0], q[2] - q[0], len(ms), record)


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
"""How a run is timed. ``wall``: elapsed time, the latency a user sees on a machine of their own.
``cpu``: CPU time of this process during the run; with one thread, the run's latency on a core of
its own, unaffected by other processes taking turns on a shared machine (busy machines stretch
wall-clock runs by 2-3x; see docs/latency.md)."""


def check_clock(clock: str) -> Callable[[], float]:
    """The clock function of ``clock`` (one clear error for an unknown name)."""
    if clock not in CLOCKS:
        raise PrunekitError(f"unknown latency clock {clock!r}; valid: {', '.join(CLOCKS)}")
    return CLOCKS[clock]


def timed(run: Callable[[], Any], clock: str = "wall") -> Callable[[], float]:
    """A function that calls ``run`` once and returns the seconds it took on ``clock``."""
    now = check_clock(clock)

    def once() -> float:
        t0 = now()
        run()
        return now() - t0

    return once


def repeat(timed: Callable[[], float], warmup: int, repeats: int, min_time_s: float) -> list[float]:
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


def time_blocks(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, threads: int | None, total_s: float,
                blocks: int = 9, clock: str = "wall") -> float:
    """Median milliseconds of ``fn(x)`` over ``blocks`` blocks of repeated calls, each about ``total_s / blocks`` s."""
    now = check_clock(clock)
    steady_allocator()
    with pinned_threads(threads), torch.inference_mode():
        fn(x)
        t0 = now()
        fn(x)
        once = max(now() - t0, 1e-7)
        number = max(1, int(total_s / blocks / once))
        times = []
        for _ in range(blocks):
            t0 = now()
            for _ in range(number):
                fn(x)
            times.append((now() - t0) / number)
    times.sort()
    return times[len(times) // 2] * 1000
