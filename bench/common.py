"""Helpers every benchmark script shares: run a ``prunekit`` command in this process, tell whether a
cached step is complete, describe this machine."""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from prunekit.cli.main import main as prunekit


def cli(args: list[str]) -> float:
    """Run one ``prunekit`` command in this process; returns its wall time in seconds (a failure stops the bench)."""
    print(f"$ prunekit {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    code = prunekit(args)
    if code:
        raise SystemExit(f"prunekit {shlex.join(args)} failed with exit code {code}")
    return time.perf_counter() - t0


def done(folder: Path) -> bool:
    """Whether a step's output folder is complete (prunekit writes it whole, its metrics included)."""
    return (folder / "metrics.json").is_file()


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: CPU, cores, memory, versions."""
    from prunekit.latency import cpu_name

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": round(mem, 1) if mem else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}
