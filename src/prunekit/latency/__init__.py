"""Latency on the platforms users deploy to: measurement (torch CPU / CUDA, ONNX Runtime fp32 and int8,
OpenVINO, a user's device command), per-layer costs, lookup tables that predict a network's latency, and
latency as a NetAdapt resource. Platforms are a registry (:mod:`prunekit.latency.platforms`)."""

from prunekit.latency.layers import layer_costs
from prunekit.latency.measure import (
    PLATFORMS, LatencyResult, cpu_name, measure_latency, pinned_threads, platform_record, steady_allocator,
)
from prunekit.latency.platforms import Platform, get_platform, list_platforms, platform_help, register_platform
from prunekit.latency.table import LatencyTable, build_lut

__all__ = ["PLATFORMS", "LatencyResult", "LatencyTable", "Platform", "build_lut", "cpu_name", "get_platform",
           "layer_costs", "list_platforms", "measure_latency", "pinned_threads", "platform_help", "platform_record",
           "register_platform", "steady_allocator"]
