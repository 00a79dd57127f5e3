"""NetAdapt's working folder: configuration, history, and the chosen model of every iteration.

Layout::

    config.json          the run's settings and its starting point (read by --resume)
    history.jsonl        one line per finished iteration
    iterations/000/      checkpoint folder of the starting network (then 001, 002, ...)
    candidates/005/G/    every candidate of iteration 5 (when save_interval asks for it)
    metrics.json         the final network's figures
    log.txt              what the run printed, with the time of each line (appended to on resume)

Every file is written atomically, and an iteration's checkpoint is complete before its history
line is: a run killed at any moment resumes from its last finished iteration.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io import atomic_write, load_checkpoint, read_json, save_checkpoint, write_json
from prunekit.io.locks import hold, let_go

CONFIG = "config.json"
HISTORY = "history.jsonl"
METRICS = "metrics.json"
LOG = "log.txt"


class WorkDir:
    """Reads and writes one NetAdapt working folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._held: list[tuple[int, int]] = []

    def claim(self) -> None:
        """Hold the folder for this process until :meth:`release` or the process's end, however it ends: two runs
        (a run and a resume started beside it) would interleave their iterations in one history, and one's
        tidying would delete the other's files being written. The lock is the operating system's, on the
        folder itself (nothing is written into it); claims in one process on one folder are counted."""
        if self._held:
            return
        key = hold(self.path)
        if key is not None:
            self._held.append(key)

    @contextmanager
    def held(self) -> Iterator["WorkDir"]:
        """:meth:`claim` for the ``with`` block."""
        self.claim()
        try:
            yield self
        finally:
            self.release()

    def release(self) -> None:
        """Let other processes use the folder again (once every claim of this process on it is released)."""
        for key in self._held:
            let_go(key)
        self._held = []

    def iteration_dir(self, iteration: int) -> Path:
        """Checkpoint folder of an iteration's chosen network (0: the starting network)."""
        return self.path / "iterations" / f"{iteration:03d}"

    def candidate_dir(self, iteration: int, group: str) -> Path:
        """Checkpoint folder of one candidate."""
        return self.path / "candidates" / f"{iteration:03d}" / group.replace("/", "_")

    def exists(self) -> bool:
        """Whether a run was started here."""
        return (self.path / CONFIG).is_file()

    def check_new(self) -> None:
        """Refuse a folder that already holds a run."""
        if self.exists():
            raise PrunekitError(f"{self.path} already holds a NetAdapt run: pass --resume to continue it, "
                                "or choose another --work-dir")

    def start(self, config: dict[str, Any]) -> None:
        """Mark the run as started (after the starting network is saved)."""
        self.check_new()
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / CONFIG, config)
        atomic_write(self.path / HISTORY, lambda tmp: open(tmp, "w").close())

    def config(self) -> dict[str, Any]:
        """The saved configuration (checked to have the form a run writes)."""
        if self.path.is_file():
            raise PrunekitError(f"{self.path} is a file: give a NetAdapt working folder (the one holding {CONFIG})")
        if not self.exists():
            raise PrunekitError(f"{self.path} holds no NetAdapt run (no {CONFIG})")
        config = read_json(self.path / CONFIG)
        fault = _config_fault(config)
        if fault:
            raise PrunekitError(f"{self.path / CONFIG} is not a NetAdapt run's configuration ({fault}): it was edited "
                                "or damaged; restore it, or start a new run in another --work-dir")
        return config

    def update_config(self, config: dict[str, Any]) -> None:
        """Save a changed configuration (e.g. options overridden on resume)."""
        write_json(self.path / CONFIG, config)

    def history(self) -> list[dict[str, Any]]:
        """Finished iterations, in order (a torn last line is ignored; any other damage is an error naming the line)."""
        path = self.path / HISTORY
        if not path.is_file():
            return []
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise PrunekitError(f"{path} is unreadable ({err}); restore it, or start a new run") from None
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # a write cut short (older prunekit appended lines in place)
                rec = None
            fault = _record_fault(rec, len(records) + 1)
            if fault is None and not self.iteration_dir(len(records) + 1).is_dir():
                fault = f"its network {self.iteration_dir(len(records) + 1)} is missing"
            if fault:
                raise PrunekitError(f"{path}, line {number}: {fault}; the file was edited or damaged: restore it, "
                                    "or start a new run in another --work-dir")
            records.append(rec)
        return records

    def append_log(self, line: str) -> None:
        """Add what the run printed to ``log.txt`` (once the folder exists), stamped with the time."""
        if self.path.is_dir():
            with open(self.path / LOG, "a", encoding="utf-8") as f:
                f.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {line}\n")

    def append_history(self, record: dict[str, Any]) -> None:
        """Add a finished iteration's line (the whole file is rewritten atomically)."""
        lines = [json.dumps(r) for r in self.history()] + [json.dumps(record)]
        text = "\n".join(lines) + "\n"
        atomic_write(self.path / HISTORY, lambda tmp: Path(tmp).write_text(text))

    def save_model(self, folder: Path, model: nn.Module, metrics: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write a checkpoint folder (weights and description, atomically)."""
        save_checkpoint(folder, model, metrics=metrics, meta=meta)

    def load_model(self, iteration: int, fresh: nn.Module | None = None, model_factory: str | None = None) -> nn.Module:
        """The chosen network of ``iteration``, rebuilt from its checkpoint (``fresh``: an original instance;
        ``model_factory``: the user's factory it may name, see :func:`prunekit.io.load_checkpoint`)."""
        return load_checkpoint(self.iteration_dir(iteration), model=fresh, model_factory=model_factory).model

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """The final network's figures."""
        write_json(self.path / METRICS, metrics)


RECORD_NUMBERS = ("iteration", "target", "resource", "accuracy", "channels", "seconds")
"""Fields of a history line that readers use (``prunekit history``, ``pick``, resume)."""


def _numbers(d: Any, *keys: str) -> bool:
    return isinstance(d, dict) and all(isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool)
                                       for k in keys)


def _config_fault(config: Any) -> str | None:
    """What is wrong with a working folder's config.json (None if nothing)."""
    if not isinstance(config, dict):
        return "it is not a JSON object"
    netadapt = config.get("netadapt")
    if not isinstance(netadapt, dict) or not isinstance(netadapt.get("resource"), str):
        return "'netadapt' is missing or has no 'resource'"
    if not isinstance(config.get("meta", {}), dict):
        return "'meta' is not an object"
    if not _numbers(config.get("start"), "resource", "accuracy"):
        return "'start' needs 'resource' and 'accuracy' numbers"
    return None


def _record_fault(rec: Any, expected: int) -> str | None:
    """What is wrong with a history line (None if nothing)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    candidates = rec.get("candidates")
    if not _numbers(rec, *RECORD_NUMBERS) or not isinstance(rec.get("group"), str) or not isinstance(candidates, list) \
            or not all(isinstance(c, dict) and isinstance(c.get("status"), str) for c in candidates):
        return f"needs the numbers {', '.join(RECORD_NUMBERS)}, the group's name and the candidates list"
    if rec["iteration"] != expected:
        return f"iteration {rec['iteration']} where {expected} was expected"
    return None
