"""Latency on the platforms users deploy to: measurement (torch CPU / CUDA, ONNX Runtime) and per-layer costs."""

from prunekit.latency.layers import layer_costs
from prunekit.latency.measure import PLATFORMS, LatencyResult, measure

__all__ = ["PLATFORMS", "LatencyResult", "layer_costs", "measure"]
