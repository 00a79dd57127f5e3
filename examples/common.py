"""What the examples share: run a ``prunekit`` command in this process (printed first), tell whether a cached step
is complete, measure latencies side by side, describe this machine."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from prunekit.cli.main import main as prunekit


def cli(args: list[str], ok: tuple[int, ...] = (0,)) -> int:
    """Run ``prunekit ARGS`` here; stops the example on an exit status not in ``ok``."""
    print(f"\n$ prunekit {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    code = prunekit(args)
    print(f"(exit {code}, {time.perf_counter() - t0:.0f} s)", flush=True)
    if code not in ok:
        raise SystemExit(f"prunekit {shlex.join(args)} failed with exit status {code}")
    return code


def done(folder: Path) -> bool:
    """Whether a step's output folder is complete (prunekit writes it whole, its metrics included)."""
    return (folder / "metrics.json").is_file()


def read_json(path: Path) -> Any:
    """A JSON file's content."""
    return json.loads(Path(path).read_text())


def latencies(models: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int = 5, threads: int = 1) -> dict[str, dict]:
    """Every model's latency on torch-cpu with ``threads`` threads, measured in ``rounds`` interleaved rounds (so a
    busy spell of the machine hits all of them): median of the rounds' medians, and their spread."""
    from prunekit.latency import measure_latency

    runs: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            runs[name].append(measure_latency(model.eval(), x, "torch-cpu", threads=threads).median_ms)
    return {name: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "rounds": v}
            for name, v in runs.items()}


def machine() -> dict[str, Any]:
    """The machine the figures were measured on: CPU, cores, memory, versions, load."""
    from prunekit.latency import cpu_name

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": round(mem, 1) if mem else None,
            "python": platform.python_version(), "torch": torch.__version__, "load_average": os.getloadavg()}


def markdown(rows: list[list[Any]], headers: list[str]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def example_args(doc: str, default_out: str, argv: list[str] | None, full: dict, quick: dict) -> tuple[Path, dict]:
    """The output folder and the settings (full, or the tiny ``--quick`` smoke test) an example runs with; one
    thread, as every figure here is measured."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", default=default_out, help="folder of every step (cached)")
    p.add_argument("--quick", action="store_true", help="a smoke test on tiny settings (figures mean nothing)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    return Path(args.out), quick if args.quick else full


def write_results(out: Path, res: dict, md: str, note: str = "") -> None:
    """``OUT/results.json`` and ``OUT/results.md``, and the table printed."""
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "results.md").write_text(md + "\n")
    print(f"\n{md}\n\n{note}results: {out / 'results.json'}")

