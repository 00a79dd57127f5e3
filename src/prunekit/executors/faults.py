"""Fault injection for testing executors: make a candidate's worker process die, as a crash would.

Pass one as ``NetAdapt(..., fault=...)``; it is called at the start of every candidate.
"""

from __future__ import annotations

import os
from pathlib import Path

from prunekit.algorithms.netadapt import CandidateJob


class DieOnce:
    """The first attempt at ``group``'s candidate (in any iteration) kills its process; retries go through.

    A marker file in ``folder`` remembers the death across processes.
    """

    def __init__(self, folder: str | os.PathLike, group: str) -> None:
        self.folder, self.group = str(folder), group

    def __call__(self, job: CandidateJob) -> None:
        """Exit hard on the first attempt."""
        marker = Path(self.folder) / f"died-{self.group}"
        if job.group == self.group and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)


class AlwaysDie:
    """Every attempt at ``group``'s candidate kills its process."""

    def __init__(self, group: str) -> None:
        self.group = group

    def __call__(self, job: CandidateJob) -> None:
        """Exit hard."""
        if job.group == self.group:
            os._exit(1)
