"""NetAdapt: budget-driven iterative channel pruning (Yang et al., ECCV 2018), with cheap candidate scoring
(adaptive BatchNorm, successive halving). The loop does no file I/O: see prunekit.pipeline for the
working folder, resume and the command line."""

from prunekit.algorithms.netadapt.candidate import (
    CandidateJob, CandidateResult, IterationInput, Task, recalibrate_batchnorm, run_candidate,
)
from prunekit.algorithms.netadapt.config import TINYNN_ALIASES, NetAdaptConfig, iteration_target, target_schedule
from prunekit.algorithms.netadapt.events import NetAdaptEvents
from prunekit.algorithms.netadapt.ranking import list_selection_rules, register_selection_rule
from prunekit.algorithms.netadapt.modes import list_scoring_modes, register_scoring_mode
from prunekit.algorithms.netadapt import scoring  # noqa: F401  (registers the built-in scoring modes)
from prunekit.algorithms.netadapt.search import Executor, NetAdaptResult, NetAdaptSearch, ResumePoint

__all__ = [
    "CandidateJob", "CandidateResult", "Executor", "IterationInput", "NetAdaptConfig", "NetAdaptEvents",
    "NetAdaptResult", "NetAdaptSearch", "ResumePoint", "TINYNN_ALIASES", "Task", "iteration_target",
    "list_scoring_modes", "list_selection_rules", "recalibrate_batchnorm", "register_scoring_mode",
    "register_selection_rule", "run_candidate", "target_schedule",
]
