"""The registry of NetAdapt's scoring modes (the modes themselves are in ``scoring.py``)."""

from __future__ import annotations

from typing import Any, Callable

from prunekit.registry import Registry

SCORING_MODES: Registry[Callable[..., Any]] = Registry("scoring mode")
"""Mode name -> ``fn(shared, planned_jobs, run_jobs) -> ScoredIteration``."""

register_scoring_mode = SCORING_MODES.register


def list_scoring_modes() -> list[str]:
    """Registered scoring modes (the package's ``__init__`` imports the built-in ones)."""
    return SCORING_MODES.names()
