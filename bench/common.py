"""Helpers every benchmark script shares: run a ``prunekit`` command in this process, tell whether a
cached step is complete, time a resumable step, describe this machine and the command that ran, and
format markdown figures."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from prunekit.cli.main import main as prunekit
from prunekit.io import read_description, write_json

LIBRARIES = ("torchvision", "torch-pruning", "onnxruntime", "prunekit")
"""Versions :func:`machine` records beside torch's (None where one is not installed)."""


# -- running and caching steps ------------------------------------------------------------------


def cli(args: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Run one ``prunekit`` command in this process; returns its wall time in seconds. An exit status outside
    ``ok`` stops the bench."""
    print(f"$ prunekit {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    code = prunekit(args)
    if (code or 0) not in ok:
        raise SystemExit(f"prunekit {shlex.join(args)} failed with exit code {code}")
    return time.perf_counter() - t0


def done(folder: Path) -> bool:
    """Whether a step's output folder is complete (prunekit writes it whole, its metrics included)."""
    return (folder / "metrics.json").is_file()


def cached_cli(folder: Path, args: list[str]) -> float | None:
    """Run a ``prunekit`` command unless ``folder`` is already complete; its seconds, or None when cached."""
    return None if done(folder) else cli(args)


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


# -- outputs a cache may replace ------------------------------------------------------------------

OUTPUTS_LEDGER = "outputs.json"
"""In a cache folder: the report and plot files last written from it, with a digest of what was written."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def foreign_outputs(cache: Path, paths: list[Path]) -> list[Path]:
    """The ``paths`` that exist but were not last written from ``cache`` (or were changed since): a report
    written from another machine's cache, committed, would lose the cells this cache does not hold."""
    ledger = read_json_or_none(cache / OUTPUTS_LEDGER) or {}
    return [p for p in paths if p.is_file() and ledger.get(str(p.resolve())) != _digest(p)]


def refuse_foreign_outputs(cache: Path, paths: list[Path], overwrite: bool) -> None:
    """Stop (one line) before any work when a report or plot this run would replace did not come from ``cache``."""
    foreign = [] if overwrite else foreign_outputs(cache, paths)
    if foreign:
        raise SystemExit(f"{foreign[0]}: not written from this cache ({cache}), so replacing it would drop the "
                         "figures it holds that this cache lacks; write elsewhere (--report PATH, --plots-dir DIR) "
                         "or pass --overwrite to replace it")


def record_outputs(cache: Path, paths: list[Path]) -> None:
    """Note in ``cache`` that it wrote ``paths`` (their digests), so a later run from it may replace them."""
    ledger = read_json_or_none(cache / OUTPUTS_LEDGER) or {}
    ledger.update({str(p.resolve()): _digest(p) for p in paths if p.is_file()})
    write_json(cache / OUTPUTS_LEDGER, ledger)


@contextmanager
def timed(path: Path) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``path`` (``{"seconds": total}``), also when the block
    fails or is interrupted: a step resumed over several invocations sums its parts."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add_seconds(path, time.perf_counter() - t0)


@contextmanager
def exclusive(folder: Path, wait: bool = False) -> Iterator[bool]:
    """Hold ``folder/.bench.lock`` for the ``with`` block, so that benchmark processes run side by side on one
    cache never work on the same step; yields False when another process holds it (or waits for it: ``wait``)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".bench.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_seconds(path: Path, seconds: float | None) -> None:
    """Add ``seconds`` (nothing when None) to the total kept in ``path``."""
    if seconds is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"seconds": (seconds_in(path) or 0.0) + seconds})


def seconds_in(path: Path) -> float | None:
    """The total kept in ``path`` by :func:`timed` / :func:`add_seconds`, or None."""
    record = read_json_or_none(path)
    return record["seconds"] if record else None


def epoch_seconds(checkpoint: Path) -> float:
    """Seconds per training epoch of the run that wrote ``checkpoint``: the summed ``seconds`` of its
    ``train_log.jsonl`` divided by the epochs it was asked for (a fractional last epoch counts by its share)."""
    log = [json.loads(line) for line in (checkpoint / "train_log.jsonl").read_text().splitlines() if line.strip()]
    epochs = float(read_description(checkpoint)["meta"]["train"]["epochs"])
    return sum(r["seconds"] for r in log) / epochs


def log_invocation(out: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Append one invocation's record (date, command, wall time) to ``OUT/invocations.jsonl``; returns them all."""
    path = out / "invocations.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- where and how ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The machine a figure was measured on: CPU, cores, memory, torch threads, library versions."""
    from importlib.metadata import PackageNotFoundError, version

    from prunekit.latency import cpu_name

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = None
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gib": round(mem, 1) if mem else None,
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            **versions}


def machine_line(m: dict[str, Any]) -> str:
    """:func:`machine`'s record as one line."""
    libs = ", ".join(f"{name} {m[name]}" for name in LIBRARIES if m.get(name))
    memory = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    return (f"{m['cpu']}, {m['cores']} cores{memory}; {m['threads']} torch thread(s); Python {m['python']}, "
            f"torch {m['torch']}, {libs}")


def command_line() -> str:
    """The command that ran, with the thread setting that shaped its timings."""
    env = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    return f"{env}python {shlex.join(sys.argv)}"


# -- markdown -----------------------------------------------------------------------------------


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def pct(v: float) -> str:
    """0.9123 -> '91.23 %'."""
    return f"{100 * v:.2f} %"


def spread_cell(values: list[float]) -> str:
    """Accuracies as ``91.23 %`` for one, ``91.23 % (90.80-91.50)``: mean (min-max) for several; ``-`` for none."""
    if not values:
        return "-"
    mean = pct(statistics.fmean(values))
    return mean if len(values) == 1 else f"{mean} ({100 * min(values):.2f}-{100 * max(values):.2f})"


def rss_gb(pid: int) -> float:
    """Resident memory of process ``pid`` in GiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0
