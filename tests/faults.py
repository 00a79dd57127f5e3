"""Fault injection for testing executors (test code, not shipped): make a candidate's worker process die,
as a crash would. ``WithFault(executor, fault)`` runs ``fault(job)`` at the start of every candidate.
"""

from __future__ import annotations

import functools
import os
import sys
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


def _faulty(fault, fn, shared, job):
    fault(job)
    return fn(shared, job)


class WithFault:
    """An executor that calls ``fault(job)`` before every candidate, in the process that runs it."""

    def __init__(self, inner, fault) -> None:
        self.inner, self.fault = inner, fault

    def map(self, fn, shared, jobs):
        """The inner executor's map, each candidate preceded by the fault."""
        return self.inner.map(functools.partial(_faulty, self.fault, fn), shared, jobs)


try:  # Ray workers cannot import the tests package: ship this module's code by value
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:
    pass
