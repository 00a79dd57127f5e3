"""Settings of a latency budget: where and how a network's latency is measured or predicted."""

from __future__ import annotations

from dataclasses import dataclass

from prunekit.settings import Settings, setting

MODES = ("lut", "measure")


def _platforms() -> list[str]:
    from prunekit.latency.measure import PLATFORMS

    return list(PLATFORMS)


@dataclass
class LatencyConfig(Settings):
    """How NetAdapt prices a network with ``resource="latency"`` (milliseconds per forward pass)."""

    platform: str = setting("torch-cpu", "where latency is measured", choices=_platforms)
    latency_mode: str = setting("lut", "predict candidates from a lookup table (lut) or time each one for real "
                                       "(measure)", choices=MODES)
    lut: str | None = setting(None, "lookup table JSON: used if it exists, built from the model and saved there "
                                    "if not")
    force_lut: bool = setting(False, "use a table measured on another platform")
    latency_batch: int | None = setting(None, "batch size the latency is for (default 1)")
    threads: int | None = setting(None, "CPU threads of the latency platform (default: torch's setting)")
