"""Pruning algorithms: one-shot pruning by a criterion, and NetAdapt."""

from prunekit.algorithms.netadapt import NetAdapt, NetAdaptConfig, NetAdaptResult
from prunekit.algorithms.oneshot import prune

__all__ = ["NetAdapt", "NetAdaptConfig", "NetAdaptResult", "prune"]
