"""How the NetAdapt loop reports what it does, without doing any file I/O or printing itself.

The pipeline layer subclasses :class:`NetAdaptEvents` to save checkpoints, append the history,
write log lines and draw progress bars; the default does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from prunekit.algorithms.netadapt.candidate import CandidateResult
    from prunekit.algorithms.netadapt.config import NetAdaptConfig


class NetAdaptEvents:
    """No-op hooks the NetAdapt loop calls, in order: ``started``, then per iteration ``candidate``
    (each result as it arrives) and ``iteration``, and ``finished`` once; ``message`` for notes."""

    def started(self, config: "NetAdaptConfig", start: dict[str, Any], model: nn.Module) -> None:
        """A new run's starting network (iteration 0) has been measured; ``start`` holds its figures."""

    def candidate(self, iteration: int, result: "CandidateResult", done: int, total: int) -> None:
        """One candidate of ``iteration`` is scored (``result.model`` is still set)."""

    def wants_candidate_models(self, iteration: int) -> bool:
        """Whether :meth:`candidate` should receive every candidate's model (e.g. to save them)."""
        return False

    def iteration(self, record: dict[str, Any], model: nn.Module) -> None:
        """An iteration is finished: its history record and the kept network."""

    def message(self, text: str) -> None:
        """Something a user should know (a fallback, why a run stopped)."""

    def finished(self, metrics: dict[str, Any], model: nn.Module) -> None:
        """The run is over: the final network and its figures."""
