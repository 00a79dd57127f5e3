"""Pruning algorithms: one-shot pruning by a criterion, and NetAdapt's search (no file I/O, no printing)."""

from prunekit.algorithms.netadapt import NetAdaptConfig, NetAdaptResult, NetAdaptSearch
from prunekit.algorithms.oneshot import prune

__all__ = ["NetAdaptConfig", "NetAdaptResult", "NetAdaptSearch", "prune"]
