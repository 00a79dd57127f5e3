"""NetAdapt's working folder: configuration, history, and the chosen model of every iteration.

Layout::

    config.json          the run's settings and its starting point (read by --resume)
    history.jsonl        one line per finished iteration
    iterations/000/      checkpoint folder of the starting network (then 001, 002, ...)
    candidates/005/G/    every candidate of iteration 5 (when save_interval asks for it)
    metrics.json         the final network's figures

Every file is written atomically, and an iteration's checkpoint is complete before its history
line is: a run killed at any moment resumes from its last finished iteration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io import atomic_write, load_checkpoint, read_json, save_checkpoint, write_json

CONFIG = "config.json"
HISTORY = "history.jsonl"
METRICS = "metrics.json"


class WorkDir:
    """Reads and writes one NetAdapt working folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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
        """The saved configuration."""
        if not self.exists():
            raise PrunekitError(f"{self.path} holds no NetAdapt run (no {CONFIG})")
        return read_json(self.path / CONFIG)

    def update_config(self, config: dict[str, Any]) -> None:
        """Save a changed configuration (e.g. options overridden on resume)."""
        write_json(self.path / CONFIG, config)

    def history(self) -> list[dict[str, Any]]:
        """Finished iterations, in order (lines after a gap or a torn write are ignored)."""
        path = self.path / HISTORY
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            if rec.get("iteration") != len(records) + 1 or not self.iteration_dir(rec["iteration"]).is_dir():
                break
            records.append(rec)
        return records

    def append_history(self, record: dict[str, Any]) -> None:
        """Add a finished iteration's line (the whole file is rewritten atomically)."""
        lines = [json.dumps(r) for r in self.history()] + [json.dumps(record)]
        text = "\n".join(lines) + "\n"
        atomic_write(self.path / HISTORY, lambda tmp: Path(tmp).write_text(text))

    def save_model(self, folder: Path, model: nn.Module, metrics: dict[str, Any], meta: dict[str, Any]) -> None:
        """Write a checkpoint folder (weights and description, atomically)."""
        save_checkpoint(folder, model, metrics=metrics, meta=meta)

    def load_model(self, iteration: int, fresh: nn.Module | None = None) -> nn.Module:
        """The chosen network of ``iteration``, rebuilt from its checkpoint (``fresh``: an original instance)."""
        return load_checkpoint(self.iteration_dir(iteration), model=fresh).model

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """The final network's figures."""
        write_json(self.path / METRICS, metrics)
