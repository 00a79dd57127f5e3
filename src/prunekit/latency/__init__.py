"""Latency on the platforms users deploy to: measurement (torch CPU / CUDA, ONNX Runtime), per-layer costs,
lookup tables that predict a network's latency, and latency as a NetAdapt resource."""

from prunekit.latency.layers import layer_costs
from prunekit.latency.measure import (
    PLATFORMS, LatencyResult, cpu_name, measure, pinned_threads, platform_record, steady_allocator,
)
from prunekit.latency.table import LatencyTable, build_lut

__all__ = ["PLATFORMS", "LatencyResult", "LatencyTable", "build_lut", "cpu_name", "layer_costs", "measure",
           "pinned_threads", "platform_record", "steady_allocator"]
