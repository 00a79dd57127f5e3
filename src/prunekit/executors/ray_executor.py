"""NetAdapt's candidates as Ray tasks: one machine's cores and GPUs, or a Ray cluster.

The iteration's shared input (the current network, the data inside the fine-tuning and scoring
callables) is put in Ray's object store once per iteration; each candidate is one task that
receives it by reference. Only the driver writes the working folder. A task whose worker dies is
retried by Ray (``max_retries``); one that keeps dying comes back as a failed candidate, and the
iteration goes on with the others.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prunekit.algorithms.netadapt import CandidateJob, CandidateResult, IterationInput
from prunekit.errors import PrunekitError, first_line
from prunekit.executors.registry import ExecutorConfig, register_executor


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PrunekitError("the ray executor needs Ray: pip install 'prunekit[ray]'") from None
    return ray


def _call(fn: Callable[[IterationInput, CandidateJob], CandidateResult], shared: IterationInput,
          job: CandidateJob) -> CandidateResult:
    return fn(shared, job)


class RayExecutor:
    """Runs each candidate as a Ray task.

    ``address``: None starts a local Ray (using ``num_cpus`` cores, default all); ``"auto"`` or
    ``"HOST:PORT"`` joins a running cluster. ``cpus_per_candidate`` / ``gpus_per_candidate`` are
    each task's resources (a fraction of a GPU shares one GPU between candidates).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus_per_candidate: float = 1.0,
                 gpus_per_candidate: float = 0.0, max_retries: int = 2, num_cpus: int | None = None) -> None:
        self.ray = _import_ray()
        if cpus_per_candidate <= 0 or gpus_per_candidate < 0 or max_retries < 0:
            raise PrunekitError("cpus per candidate must be > 0, gpus per candidate and retries >= 0")
        self.address = address
        self.cpus_per_candidate = cpus_per_candidate
        self.gpus_per_candidate = gpus_per_candidate
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self._task = None

    def start(self) -> None:
        """Connect to (or start) Ray, once."""
        if self.ray.is_initialized():
            return
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if self.address:
            kwargs["address"] = self.address
        elif self.num_cpus is not None:
            kwargs["num_cpus"] = self.num_cpus
        try:
            self.ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise PrunekitError(f"cannot start or reach Ray ({self.address or 'local'}): {err}") from None

    def map(self, fn, shared: IterationInput, jobs: list[CandidateJob]) -> Iterator[CandidateResult]:
        """Submit every job as a task sharing one object-store copy of ``shared``; yield results as they finish."""
        ray = self.ray
        self.start()
        shared_ref = ray.put(shared)
        if self._task is None:  # registered once: exporting a remote function costs a round trip
            self._task = ray.remote(num_cpus=self.cpus_per_candidate, num_gpus=self.gpus_per_candidate,
                                    max_retries=self.max_retries)(_call)
        pending = {self._task.remote(fn, shared_ref, job): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as err:
                        yield CandidateResult(job.group, "failed", job.remove,
                                              error=f"{type(err).__name__} after {self.max_retries} retries: "
                                                    f"{first_line(err, 300)}")
        finally:
            for ref in pending:  # interrupted (Ctrl-C): stop the rest
                ray.cancel(ref, force=True)


@register_executor("ray")
def ray_executor(config: ExecutorConfig) -> RayExecutor:
    """Each candidate a Ray task, on this machine's cores and GPUs or a Ray cluster."""
    return RayExecutor(config.ray_address,
                       cpus_per_candidate=1.0 if config.cpus_per_candidate is None else config.cpus_per_candidate,
                       gpus_per_candidate=0.0 if config.gpus_per_candidate is None else config.gpus_per_candidate,
                       max_retries=2 if config.max_retries is None else config.max_retries)
