"""NetAdapt's settings (defined once: the CLI, YAML files and the Python API derive from these fields),
their validation, and the schedule of per-iteration targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from prunekit.errors import PrunekitError
from prunekit.latency.config import LatencyConfig
from prunekit.settings import Settings, setting

STEP_MODES = ("resource", "share")
ATTENTION_MODES = ("head_dims", "heads", "none")
REDUCTION_OF = ("original", "current")


def _criteria() -> list[str]:
    from prunekit.criteria import list_criteria

    return list_criteria()


def _resources() -> list[str]:
    from prunekit.resources import list_resources

    return list_resources()


def _scoring_modes() -> list[str]:
    from prunekit.algorithms.netadapt.modes import list_scoring_modes

    return list_scoring_modes()


def _selection_rules() -> list[str]:
    from prunekit.algorithms.netadapt.ranking import list_selection_rules

    return list_selection_rules()


@dataclass
class NetAdaptConfig(Settings):
    """Everything that defines a NetAdapt run (saved in the working folder for ``--resume``).

    Iteration i lowers the resource target by ``init_reduction_ratio * reduction_decay ** (i - 1)`` of
    the original resource (``reduction_of="original"``, the paper's schedule) or of the current one
    (``"current"``). Each candidate removes channels from one group: the fewest (in multiples of
    ``min_channels_step``) that meet the target (``step_mode="resource"``), or ``group_share`` of the
    group (``"share"``). Candidates are scored (``scoring``) on held-out data, the best by
    ``selection`` is kept and fine-tuned for ``short_term_iters`` batches, and the loop repeats
    until the budget is met.

    The defaults are the measured ones (BENCHMARKS.md, "Choosing NetAdapt's defaults"): share steps of
    15 % of a group, the best 4 cuts of an iteration (or 30 % of its candidates, when more) applied together, candidates scored after adaptive
    BatchNorm on 500 hold-out samples, kept by accuracy lost per resource saved, and short-term
    fine-tuning that distils from the unpruned model. The paper's and MIT's setting is
    ``step_mode="resource", scoring="finetune", selection="accuracy", cuts_per_iteration=1,
    min_channels_step=8, short_term_iters=100, distill=False, score_samples=None, bn_batches=20``.
    """

    budget: float | None = setting(None, "absolute budget in resource units (MACs, FLOPs, parameters, ms)")
    budget_ratio: float | None = setting(None, "budget as a share of the model's resource, e.g. 0.5")
    resource: str = setting("macs", "resource to budget", choices=_resources, aliases=("budget_type",))
    init_reduction: float | None = setting(None, "first iteration's resource reduction, absolute "
                                                 "(overrides --init-reduction-ratio)")
    init_reduction_ratio: float = setting(0.025, "first iteration's reduction as a share of the resource",
                                          aliases=("budget_reduce_rate_init",))
    reduction_decay: float = setting(0.96, "each iteration's reduction is the previous one times this",
                                     aliases=("budget_reduce_rate_decay",))
    reduction_of: str = setting("original", "the reductions are shares of the original resource (the paper) or "
                                            "of the current one", choices=REDUCTION_OF)
    min_channels_step: int = setting(1, "channels are removed in multiples of this",
                                     aliases=("netadapt_min_feature_size",))
    step_mode: str = setting("share", "a candidate removes the fewest channels that meet the iteration's "
                                         "target (resource) or --group-share of its group (share)",
                             choices=STEP_MODES)
    group_share: float = setting(0.15, "share of a group's channels one candidate removes (--step-mode share)",
                                 aliases=("delta_crop",))
    cuts_per_iteration: int = setting(4, "--step-mode share: each iteration applies the best N candidates' cuts "
                                         "together (N times fewer iterations)")
    cut_share: float = setting(0.3, "--step-mode share: each iteration applies the cuts of at least this share of "
                                    "its candidates (so that networks with many groups need no more iterations)")
    criterion: str = setting("l2", "which channels a candidate removes", choices=_criteria, aliases=("metrics",))
    exclude: list[str] = setting(factory=list, help="layer names to keep whole", metavar="LAYER")
    attention: str = setting("head_dims", "attention layers: prune one dimension in every head (head_dims), whole "
                                          "heads (heads), or neither (none)", choices=ATTENTION_MODES)
    scoring: str = setting("adaptive-bn", "how candidates are scored", choices=_scoring_modes)
    score_samples: int | None = setting(500, "score candidates on a seeded subset of this many hold-out "
                                              "samples (the kept network is scored on all of them)")
    bn_batches: int = setting(5, "training batches that re-estimate BatchNorm statistics (adaptive-bn, halving)")
    halving_keep: int = setting(3, "halving: candidates fine-tuned after the cheap first round")
    selection: str = setting("efficiency", "which candidate an iteration keeps", choices=_selection_rules)
    short_term_iters: int = setting(20, "batches of short-term fine-tuning (every candidate's in finetune "
                                         "scoring; the kept network's otherwise)", aliases=("netadapt_max_iter",))
    finetune_lr: float = setting(0.01, "short-term fine-tuning learning rate", aliases=("netadapt_lr",))
    distill: bool = setting(True, "short-term fine-tuning distils from the unpruned model")
    max_iters: int = setting(1000, "stop after this many iterations (-1: no limit)", aliases=("netadapt_max_rounds",))
    final_round_to: int | None = setting(None, "after the search, round every group's width down to a multiple "
                                               "of N (reports accuracy before and after)", aliases=("resize_alf",))
    save_interval: int = setting(0, "save every candidate of every N-th iteration (0: only the kept networks)")
    seed: int = setting(0, "seed of the candidates' fine-tuning and scoring subsets")
    latency: LatencyConfig = setting(factory=LatencyConfig, help="latency budget settings")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.latency, dict):  # a nested mapping given directly
            self.latency = LatencyConfig.from_dict(self.latency, source="latency settings")

    def validate(self) -> None:
        """Raise a clear error for settings that cannot work (before any work starts)."""
        if (self.budget is None) == (self.budget_ratio is None):
            raise PrunekitError("give exactly one of --budget or --budget-ratio")
        if self.budget_ratio is not None and not 0 < self.budget_ratio < 1:
            raise PrunekitError(f"--budget-ratio must be in (0, 1), got {self.budget_ratio}")
        if self.budget is not None and self.budget <= 0:
            raise PrunekitError(f"--budget must be positive, got {self.budget}")
        self.validate_settings()
        latency_given = self.latency != LatencyConfig()
        if latency_given and self.resource != "latency":
            raise PrunekitError(f"latency settings need --resource latency, not {self.resource}")

    def validate_settings(self) -> None:
        """Check each setting's range (not the budget, nor how they fit together): ``prunekit run`` checks these
        even when its step 2 is one-shot."""
        for option, value, ok, rule in self._range_rules():
            if value is not None and not ok(value):
                raise PrunekitError(f"--{option} must be {rule}, got {value}")
        for name in ("threads", "latency_batch"):
            value = getattr(self.latency, name)
            if value is not None and value < 1:
                raise PrunekitError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    def _range_rules(self) -> list[tuple[str, Any, Callable[[Any], bool], str]]:
        """(flag, value, test, the rule in words) for each setting with a valid range; a None value is not checked."""
        return [
            ("min-channels-step", self.min_channels_step, lambda v: v >= 1, ">= 1"),
            ("bn-batches", self.bn_batches, lambda v: v >= 1, ">= 1"),
            ("short-term-iters", self.short_term_iters, lambda v: v >= 0, ">= 0"),
            ("max-iters", self.max_iters, lambda v: v >= -1, ">= 0 (or -1: no limit)"),
            ("reduction-decay", self.reduction_decay, lambda v: 0 < v <= 1, "in (0, 1]"),
            ("init-reduction-ratio", self.init_reduction_ratio, lambda v: v > 0, "> 0"),
            ("init-reduction", self.init_reduction, lambda v: v > 0, "> 0"),
            ("group-share", self.group_share, lambda v: 0 < v < 1, "in (0, 1)"),
            ("score-samples", self.score_samples, lambda v: v >= 1, ">= 1"),
            ("halving-keep", self.halving_keep, lambda v: v >= 1, ">= 1"),
            ("cuts-per-iteration", self.cuts_per_iteration, lambda v: v >= 1, ">= 1"),
            ("cut-share", self.cut_share, lambda v: 0 <= v <= 1, "in [0, 1]"),
            ("final-round-to", self.final_round_to, lambda v: v >= 1, ">= 1"),
            ("finetune-lr", self.finetune_lr, lambda v: v > 0, "> 0"),
            ("save-interval", self.save_interval, lambda v: v >= 0, ">= 0 (0: only the kept networks)"),
        ]

    def with_changes(self, **changes: Any) -> "NetAdaptConfig":
        """A checked copy with the given settings changed (None values ignored); latency settings may be
        given flat (``platform=...``) or nested (``latency={...}``)."""
        flat_latency = {k: changes.pop(k) for k in list(changes) if k in LatencyConfig.field_names()}
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None and k != "latency"})
        latency = dict(d["latency"])
        latency.update({k: v for k, v in {**(changes.get("latency") or {}), **flat_latency}.items() if v is not None})
        d["latency"] = latency
        return NetAdaptConfig.from_dict(d, source="NetAdapt settings")


def target_schedule(current: float, iteration: int, init_reduction: float, decay: float, budget: float) -> float:
    """The resource target of ``iteration`` (1-based): ``current - init_reduction * decay**(iteration-1)``,
    never below the budget (so the last iteration lands on it)."""
    return max(current - init_reduction * decay ** (iteration - 1), budget)


def iteration_target(config: NetAdaptConfig, current: float, base: float, iteration: int, budget: float) -> float:
    """The target of ``iteration`` under the configured schedule."""
    if config.init_reduction is not None:
        reduction = config.init_reduction
    else:
        reduction = config.init_reduction_ratio * (base if config.reduction_of == "original" else current)
    return target_schedule(current, iteration, reduction, config.reduction_decay, budget)


TINYNN_ALIASES = {**NetAdaptConfig.aliases(), "netadapt_dir": "work_dir"}
"""TinyNeuralNetwork's (and the "Pruning" tool's) NetAdapt config keys -> prunekit's."""
