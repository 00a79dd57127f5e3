"""``command``: latency measured by the user's own command, e.g. on a phone or an edge box.

prunekit exports the network (or one layer, for a lookup table) to ONNX, runs the command given
with ``--measure-command`` (split like a shell would, run without a shell) with ``{onnx}``
replaced by the file's path, ``{batch}`` by the batch size and ``{threads}`` by the thread count,
and reads the milliseconds it prints on stdout: the last line ``latency_ms: X`` (or
``latency_ms=X``) if there is one, otherwise the last number printed.

Results are cached in a JSON file (default ``measure-command.json`` in prunekit's cache folder,
``$PRUNEKIT_CACHE`` or ``~/.cache/prunekit``; ``cache=`` to choose) keyed by the command and the network's signature:
a hash of the ONNX graph without its weights' values (which do not set its latency), the batch
and the threads. The same network is therefore never measured twice, also across runs: a NetAdapt
run that was stopped and resumed does not run the command again for what it already measured.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io import read_json, write_json
from prunekit.latency.platforms import register_platform
from prunekit.latency.platforms.onnx_base import OnnxPlatform
from prunekit.latency.timing import LatencyResult

CACHE_FORMAT = "prunekit-measure-cache"
PLACEHOLDERS = ("{onnx}", "{batch}", "{threads}")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TAGGED = re.compile(rf"latency_ms\s*[:=]\s*({_NUMBER})", re.IGNORECASE)


def default_cache() -> Path:
    """``measure-command.json`` in prunekit's cache folder (``$PRUNEKIT_CACHE``, else ``~/.cache/prunekit``)."""
    from prunekit.data.registry import cache_dir

    return cache_dir() / "measure-command.json"


def parse_milliseconds(stdout: str) -> float | None:
    """The milliseconds in a command's output: the last ``latency_ms: X``, else the last number (None: none)."""
    tagged = _TAGGED.findall(stdout)
    numbers = tagged or re.findall(_NUMBER, stdout)
    return float(numbers[-1]) if numbers else None


def graph_signature(path: str | Path) -> str:
    """SHA-256 of the ONNX graph at ``path`` with its initializers' values left out (names, shapes and types kept)."""
    import onnx

    model = onnx.load(str(path))
    for tensor in model.graph.initializer:
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                     "string_data"):
            tensor.ClearField(name)
    model.ClearField("producer_version")
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def _tail(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else "..." + flat[-limit:]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (candidates measured by several processes share one cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@register_platform("command")
class CommandPlatform(OnnxPlatform):
    """Latency printed by a user's command that times an ONNX file (``--measure-command "CMD {onnx} {batch}"``)."""

    def __init__(self, command: str | None = None, cache: str | Path | None = None, timeout_s: float = 600.0,
                 clock: str = "wall") -> None:
        super().__init__(clock)
        if clock != "wall":
            raise PrunekitError("platform command: your command measures, so --latency-clock does not apply")
        if not command:
            raise PrunekitError("platform command needs --measure-command 'CMD {onnx} {batch}': a command that times "
                                "the ONNX file {onnx} on your device and prints its milliseconds")
        try:
            self.argv = shlex.split(command)
        except ValueError as err:
            raise PrunekitError(f"--measure-command {command!r} cannot be split into arguments: {err}") from None
        if not self.argv or "{onnx}" not in command:
            raise PrunekitError(f"--measure-command {command!r} must name the ONNX file as {{onnx}}, "
                                "e.g. 'python bench.py {onnx} {batch}'")
        self.command, self.timeout_s = command, float(timeout_s)
        self.cache = Path(cache) if cache else default_cache()

    def options(self) -> dict[str, Any]:
        return {"command": self.command, "cache": str(self.cache)}

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """The command (as the device: a table measured by another command is another platform) and threads."""
        self.check()
        return {"name": self.name, "device": f"command: {self.command}", "threads": threads, "clock": "the command's"}

    def measure(self, model: nn.Module, example_inputs: torch.Tensor, *, threads: int | None = None,
                warmup: int = 10, repeats: int = 30, min_time_s: float = 0.5) -> LatencyResult:
        """The command's figure for this network (from the cache when this network was measured before).
        ``warmup``, ``repeats`` and ``min_time_s`` are the command's business and do not apply."""
        record = {**self.record(threads), "batch_size": int(example_inputs.shape[0])}
        with tempfile.TemporaryDirectory(prefix="prunekit-command-") as tmp:
            path = self.prepare(model, example_inputs, Path(tmp))
            key = hashlib.sha256(f"{self.command}\0{record['batch_size']}\0{threads}\0{graph_signature(path)}"
                                 .encode()).hexdigest()
            entry = self._cached(key)
            if entry is None:
                entry = {"ms": self.run_command(path, record["batch_size"], threads), "batch": record["batch_size"],
                         "threads": threads, "command": self.command, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
                self._store(key, entry)
        ms = float(entry["ms"])
        return LatencyResult(ms, ms, 0.0, 1, {**record, "cached": entry.get("cached", False)})

    def run_command(self, onnx_path: Path, batch: int, threads: int | None) -> float:
        """Run the command on one ONNX file and return the milliseconds it printed (one clear error otherwise)."""
        values = {"{onnx}": str(onnx_path), "{batch}": str(batch), "{threads}": str(threads or 1)}
        argv = [_fill(arg, values) for arg in self.argv]
        said = f"measure command {self.command!r}"
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise PrunekitError(f"{said}: program {argv[0]!r} not found") from None
        except OSError as err:  # not executable, ...
            raise PrunekitError(f"{said}: cannot run {argv[0]!r} ({err.strerror})") from None
        except subprocess.TimeoutExpired as err:
            output = _text(err.stdout) + " " + _text(err.stderr)
            raise PrunekitError(f"{said} timed out after {self.timeout_s:g} s; its output: {_tail(output)!r}") from None
        output = (done.stdout or "") + " " + (done.stderr or "")
        if done.returncode != 0:
            raise PrunekitError(f"{said} failed with exit code {done.returncode}; its output: {_tail(output)!r}")
        ms = parse_milliseconds(done.stdout or "")
        if ms is None or not 0 < ms < float("inf"):
            raise PrunekitError(f"{said} printed no positive milliseconds on stdout (expected a line 'latency_ms: X' "
                                f"or a number); its output: {_tail(output)!r}")
        return ms

    # -- the cache ----------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        if not self.cache.is_file():
            return {}
        try:
            doc = read_json(self.cache)
        except ValueError:
            raise PrunekitError(f"measure cache {self.cache} is not readable JSON: delete it (its figures are "
                                "measured again)") from None
        if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
            raise PrunekitError(f"{self.cache} is not a prunekit measure cache (left as it is): choose another cache")
        return dict(doc.get("entries") or {})

    def _cached(self, key: str) -> dict[str, Any] | None:
        with _locked(self.cache):
            entry = self._load().get(key)
        return None if entry is None else {**entry, "cached": True}

    def _store(self, key: str, entry: dict[str, Any]) -> None:
        with _locked(self.cache):  # merge: another process may have added entries since
            entries = self._load()
            entries[key] = entry
            write_json(self.cache, {"format": CACHE_FORMAT, "version": 1, "entries": entries})


def _fill(arg: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        arg = arg.replace(placeholder, value)
    return arg


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
