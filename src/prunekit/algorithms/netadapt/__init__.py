"""NetAdapt: budget-driven iterative channel pruning (Yang et al., ECCV 2018)."""

from prunekit.algorithms.netadapt.candidate import CandidateJob, CandidateResult, IterationInput, run_candidate
from prunekit.algorithms.netadapt.config import TINYNN_ALIASES, NetAdaptConfig, target_schedule
from prunekit.algorithms.netadapt.search import Executor, InProcess, NetAdapt, NetAdaptResult
from prunekit.algorithms.netadapt.workdir import WorkDir

__all__ = [
    "CandidateJob", "CandidateResult", "Executor", "InProcess", "IterationInput", "NetAdapt", "NetAdaptConfig",
    "NetAdaptResult", "TINYNN_ALIASES", "WorkDir", "run_candidate", "target_schedule",
]
