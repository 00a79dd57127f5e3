"""NetAdapt's settings, their validation, and TinyNeuralNetwork's names for them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from prunekit.errors import PrunekitError

RESOURCES = ("macs", "flops", "params", "latency")

TINYNN_ALIASES = {
    "budget_type": "resource",
    "budget_reduce_rate_init": "init_reduction_ratio",
    "budget_reduce_rate_decay": "reduction_decay",
    "netadapt_lr": "finetune_lr",
    "netadapt_max_iter": "short_term_iters",
    "netadapt_max_rounds": "max_iters",
    "netadapt_min_feature_size": "min_channels_step",
}
"""TinyNeuralNetwork's NetAdapt config keys -> prunekit's."""

LATENCY_OPTIONS = {"platform": "platform", "latency_mode": "mode", "lut": "lut", "threads": "threads",
                   "force_lut": "force_lut", "latency_batch": "batch_size", "measure_command": "measure_command",
                   "latency_clock": "clock"}
"""Options of a latency budget (kept in ``extra``) -> LatencyMetric's argument names."""


@dataclass
class NetAdaptConfig:
    """Everything that defines a NetAdapt run (saved in the working folder for ``--resume``).

    Iteration i lowers the target by ``init_reduction * reduction_decay ** (i - 1)`` (the first
    reduction defaults to ``init_reduction_ratio`` of the original resource); each candidate
    removes channels in multiples of ``min_channels_step`` from one group, is fine-tuned for
    ``short_term_iters`` batches at ``finetune_lr`` and scored on held-out data.

    With ``resource="latency"`` the budget is in milliseconds; the options ``platform``,
    ``latency_mode`` (lut or measure), ``lut`` (table path), ``latency_batch``, ``threads`` and
    ``force_lut`` are accepted here and kept in ``extra``.
    """

    budget: float | None = None
    budget_ratio: float | None = None
    resource: str = "macs"
    init_reduction: float | None = None
    init_reduction_ratio: float = 0.025
    reduction_decay: float = 0.96
    min_channels_step: int = 8
    criterion: str = "l2"
    exclude: list[str] = field(default_factory=list)
    short_term_iters: int = 100
    finetune_lr: float = 0.01
    max_iters: int = 1000
    save_interval: int = 0
    """Save every candidate of every ``save_interval``-th iteration (0: only the chosen ones)."""
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Settings of the resource measurement (e.g. latency platform), recorded for resume."""

    def validate(self) -> None:
        """Raise a clear error for settings that cannot work (before any work starts)."""
        if (self.budget is None) == (self.budget_ratio is None):
            raise PrunekitError("give exactly one of budget or budget_ratio")
        if self.budget_ratio is not None and not 0 < self.budget_ratio < 1:
            raise PrunekitError(f"budget_ratio must be in (0, 1), got {self.budget_ratio}")
        if self.budget is not None and self.budget <= 0:
            raise PrunekitError(f"budget must be positive, got {self.budget}")
        if self.resource not in RESOURCES:
            raise PrunekitError(f"unknown resource {self.resource!r}; valid: {', '.join(RESOURCES)}")
        if self.min_channels_step < 1 or self.short_term_iters < 0 or self.max_iters < 0:
            raise PrunekitError("min_channels_step must be >= 1, short_term_iters and max_iters >= 0")
        if not 0 < self.reduction_decay <= 1 or self.init_reduction_ratio <= 0:
            raise PrunekitError("reduction_decay must be in (0, 1] and init_reduction_ratio > 0")
        if self.init_reduction is not None and self.init_reduction <= 0:
            raise PrunekitError("init_reduction must be positive")
        if self.extra and self.resource != "latency":
            raise PrunekitError(f"latency settings ({', '.join(sorted(self.extra))}) need resource latency, "
                                f"not {self.resource}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetAdaptConfig":
        """Build from a dict (TinyNeuralNetwork's key names accepted); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        out: dict[str, Any] = {"extra": dict(d.get("extra") or {})}
        for key, value in d.items():
            key = TINYNN_ALIASES.get(key, key)
            if key == "extra":
                continue
            if key in LATENCY_OPTIONS:
                if value is not None:
                    out["extra"][LATENCY_OPTIONS[key]] = value
                continue
            if key not in names:
                raise PrunekitError(f"unknown NetAdapt option {key!r}; valid: {', '.join(sorted(names))}")
            out[key] = value
        return cls(**out)

    def replace(self, **changes: Any) -> "NetAdaptConfig":
        """A copy with some settings changed (None values ignored)."""
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None})
        return NetAdaptConfig.from_dict(d)


def target_schedule(current: float, iteration: int, init_reduction: float, decay: float, budget: float) -> float:
    """The resource target of ``iteration`` (1-based): ``current - init_reduction * decay**(iteration-1)``,
    never below the budget (so the last iteration lands on it)."""
    return max(current - init_reduction * decay ** (iteration - 1), budget)
