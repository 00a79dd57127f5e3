"""The default executor: candidates one after another in this process."""

from __future__ import annotations

from prunekit.errors import PrunekitError
from prunekit.executors.registry import ExecutorConfig, register_executor


class InProcess:
    """Evaluates candidates in order, in this process."""

    name = "serial"

    def map(self, fn, shared, jobs):
        """Evaluate every job in order."""
        for job in jobs:
            yield fn(shared, job)


@register_executor("serial")
def serial(config: ExecutorConfig) -> InProcess:
    """Candidates one after another in this process."""
    given = [k for k in ("ray_address", "cpus_per_candidate", "gpus_per_candidate", "max_retries") if getattr(config, k) is not None]
    if given:
        raise PrunekitError(f"{', '.join('--' + k.replace('_', '-') for k in given)} need --executor ray")
    return InProcess()
