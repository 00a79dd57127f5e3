"""Settings of a latency budget: where and how a network's latency is measured or predicted."""

from __future__ import annotations

from dataclasses import dataclass

from prunekit.settings import Settings, setting

MODES = ("lut", "measure")


def _platforms() -> list[str]:
    from prunekit.latency.measure import PLATFORMS

    return list(PLATFORMS)


def _clocks() -> list[str]:
    from prunekit.latency.timing import CLOCKS

    return list(CLOCKS)


@dataclass
class LatencyConfig(Settings):
    """How NetAdapt prices a network with ``resource="latency"`` (milliseconds per forward pass)."""

    platform: str = setting("torch-cpu", "where latency is measured", choices=_platforms)
    latency_mode: str = setting("lut", "predict candidates from a lookup table (lut) or time each one for real "
                                       "(measure)", choices=MODES)
    lut: str | None = setting(None, "lookup table JSON: used if it exists, built from the model and saved there "
                                    "if not")
    force_lut: bool = setting(False, "use a table measured on another platform")
    lut_step: int = setting(8, "a new table is built at widths that are multiples of this (or of "
                               "--min-channels-step when larger); other widths are timed when a candidate first "
                               "needs them")
    latency_batch: int | None = setting(None, "batch size the latency is for (default 1)")
    threads: int | None = setting(None, "CPU threads of the latency platform (default: torch's setting)")
    latency_clock: str = setting("wall", "wall, or cpu: the CPU time of one thread, steady on a machine shared with "
                                         "other jobs (docs/latency.md)", choices=_clocks)
    measure_command: str | None = setting(None, "--platform command: a command that times the ONNX file {onnx} at "
                                                "batch {batch} on your device and prints its milliseconds "
                                                "(docs/latency.md)", metavar="CMD")
