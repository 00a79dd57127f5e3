"""A NetAdapt run's ``--lut FILE`` changes only when the run completes.

The table is built or extended in a hidden sibling, ``.FILE.partial``, and renamed over ``FILE``
when the search finishes. A run that fails or is killed leaves ``FILE`` as it was; its partial
table (measured entries, worth keeping) is what the next run with the same ``--lut`` starts from,
unless ``FILE`` was rebuilt since.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.errors import PrunekitError
from prunekit.io.atomic import atomic_write
from prunekit.io.output import PARTIAL, PARTIAL_NOTE, clean_orphans
from prunekit.latency.table import check_table_path
from prunekit.resources.metric import MetricContext, ResourceMetric, make_metric


def partial_table(lut: str | os.PathLike) -> Path:
    """The hidden sibling where a run builds or extends the table ``lut``."""
    lut = Path(lut)
    return lut.parent / f".{lut.name}{PARTIAL}"


class TableGuard:
    """Builds a run's latency metric on a working copy of its table, and publishes the copy at the end."""

    def __init__(self, config: NetAdaptConfig, progress: bool = True, log: Callable[[str], None] = print) -> None:
        self.config, self.progress, self.log = config, progress, log
        self.lut = check_table_path(str(config.latency.lut), "--lut")  # a folder is refused before any work
        self.work = partial_table(self.lut)

    @staticmethod
    def applies(config: NetAdaptConfig) -> bool:
        """Whether the run writes a table file: a latency budget priced by a table saved at --lut."""
        lat = config.latency
        return config.resource == "latency" and bool(lat.lut) and lat.latency_mode == "lut"

    def _make(self, lut: Path) -> ResourceMetric:
        latency = self.config.latency.replace(lut=str(lut))
        return make_metric("latency", MetricContext(self.config.min_channels_step, self.progress,
                                                    {"latency": latency}))

    def metric(self) -> ResourceMetric:
        """The latency metric, reading and saving the working copy (made from --lut FILE if that exists)."""
        clean_orphans(self.lut)
        clean_orphans(self.work)
        if self.work.is_file() and self.lut.is_file() and self.lut.stat().st_mtime > self.work.stat().st_mtime:
            self.work.unlink()  # FILE was rebuilt after the unfinished run: start from it
        if not self.work.is_file():
            if self.lut.is_file():
                self._make(self.lut)  # reads and checks FILE: an error names it, and nothing is written
                atomic_write(self.work, lambda tmp: shutil.copy2(self.lut, tmp))
            return self._make(self.work)
        self.log(f"latency table: continuing the one an unfinished run left in {self.work}")
        try:
            return self._make(self.work)
        except PrunekitError as err:
            raise PrunekitError(f"{err}; it was left by an unfinished run: delete {self.work} to start again "
                                f"from {self.lut}") from None

    def note(self, err: BaseException) -> None:
        """Mark an error that left the working copy behind (the CLI's error line says where it is)."""
        if self.work.is_file() and getattr(err, PARTIAL_NOTE, None) is None:
            setattr(err, PARTIAL_NOTE, self.work)

    def publish(self) -> None:
        """Rename the working copy over --lut FILE (the run is complete)."""
        if self.work.is_file():
            os.replace(self.work, self.lut)
