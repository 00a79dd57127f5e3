"""Executors that run NetAdapt's candidates: ``serial`` (in this process) and ``ray`` (optional extra),
chosen by name from a registry."""

from prunekit.executors.registry import EXECUTORS, ExecutorConfig, list_executors, make_executor, register_executor
from prunekit.executors import serial, ray_executor  # noqa: F401,E402  (registers the executors)
from prunekit.executors.serial import InProcess  # noqa: E402

__all__ = ["EXECUTORS", "ExecutorConfig", "InProcess", "list_executors", "make_executor", "register_executor"]
