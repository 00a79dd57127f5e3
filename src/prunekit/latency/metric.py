"""Latency as a NetAdapt resource: predicted from a lookup table, or measured directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.latency.measure import lowest_medians, measure_latency
from prunekit.latency.platforms import Platform, get_platform
from prunekit.latency.sites import ProbeCache
from prunekit.latency.table import LatencyTable, build_lut, check_table_path
from prunekit.structure import ModelStructure, pruned_copy

MODES = ("lut", "measure")
FINAL_ROUNDS = 3
"""Interleaved rounds of the final check's measurements of the adapted network and its base."""


class LatencyMetric:
    """Milliseconds per forward pass of the example batch on ``platform``.

    ``mode="lut"``: predicted by a :class:`LatencyTable` (``lut``: a table, or a JSON path loaded
    if it exists and built from the first model measured otherwise). ``mode="measure"``: every
    network is timed for real (slower, and candidates running side by side disturb each other).
    ``batch_size``: the batch the latency is for (default: the example inputs' own batch).
    ``measure_command``: the command of platform ``"command"`` (see
    :mod:`prunekit.latency.platforms.command`; ``measure_cache`` and ``measure_timeout`` set its
    cache file and time limit). ``clock``: ``"wall"`` (default) or ``"cpu"`` (CPU time of one
    thread: steady on a shared machine; see :data:`prunekit.latency.timing.CLOCKS`).
    """

    name = "latency"
    stepwise = True
    """Latency falls in steps as a layer narrows (kernels work in blocks of channels): NetAdapt's share cuts
    may grow to the next step (:func:`prunekit.algorithms.netadapt.candidate.stepwise_removal`)."""

    def __init__(self, platform: str | Platform = "torch-cpu", mode: str = "lut",
                 lut: str | Path | LatencyTable | None = None, threads: int | None = None,
                 batch_size: int | None = None, min_channels_step: int = 8, force_lut: bool = False,
                 progress: bool = True, measure_command: str | None = None, measure_cache: str | None = None,
                 measure_timeout: float | None = None, clock: str | None = None) -> None:
        self.backend = get_platform(platform, command=measure_command, cache=measure_cache, timeout_s=measure_timeout,
                                    clock=clock)
        if mode not in MODES:
            raise PrunekitError(f"unknown latency mode {mode!r}; valid: {', '.join(MODES)}")
        if batch_size is not None and batch_size < 1:
            raise PrunekitError(f"latency batch size must be >= 1, got {batch_size}")
        self.platform, self.mode, self.threads, self.batch_size = self.backend.name, mode, threads, batch_size
        self.min_channels_step, self.progress = min_channels_step, progress
        self.probes = ProbeCache()  # NetAdapt's iterations probe each group once
        self.shift_ms = 0.0
        self.table: LatencyTable | None = lut if isinstance(lut, LatencyTable) else None
        self.lut_path = None if isinstance(lut, LatencyTable) or lut is None else check_table_path(lut, "latency table")
        if self.table is None and self.lut_path is not None and self.lut_path.exists():
            self.table = LatencyTable.load(self.lut_path, self.backend, threads, force=force_lut)
        elif self.table is None:
            self.backend.record(threads)  # a missing GPU or runtime is an error now, not after training

    def __getstate__(self) -> dict[str, Any]:
        # a copy in another process (a Ray worker) predicts but never writes the driver's table file
        state = dict(self.__dict__)
        state["lut_path"] = None
        return state

    def _batch(self, example_inputs: torch.Tensor) -> torch.Tensor:
        """The example inputs at this metric's batch size (the first sample repeated)."""
        if self.batch_size is None or self.batch_size == example_inputs.shape[0]:
            return example_inputs
        return example_inputs[:1].repeat(self.batch_size, *([1] * (example_inputs.dim() - 1)))

    def _ready_table(self, model: nn.Module, example_inputs: torch.Tensor) -> LatencyTable:
        """The table, built (and saved) from ``model`` if there is none yet, calibrated for this input shape."""
        if self.table is None:
            self.table = build_lut(model, example_inputs, self.backend, min_channels_step=self.min_channels_step,
                                   threads=self.threads, progress=self.progress, save_to=self.lut_path)
        elif not self.table.is_calibrated(example_inputs):
            self.table.calibrate(model, example_inputs, round_to=self.min_channels_step)
        if self.lut_path is not None:
            self.table.path = self.table.path or self.lut_path
            self.table.save_if_changed()
        return self.table

    @property
    def cheap_what_if(self) -> bool:
        """Whether a what-if is arithmetic (a table) rather than a measurement of a pruned copy."""
        return self.mode == "lut"

    @property
    def correctable(self) -> bool:
        """Whether predictions can be corrected by a measurement (:meth:`correct`): table-priced latencies."""
        return self.mode == "lut"

    def correct(self, shift_ms: float) -> None:
        """Add ``shift_ms`` to every prediction from now on (NetAdapt's measured check at the end of a search)."""
        self.shift_ms += shift_ms

    def of_model(self, model: nn.Module, example_inputs: torch.Tensor) -> float:
        """Predicted (lut) or measured latency of ``model`` in milliseconds."""
        example_inputs = self._batch(example_inputs)
        if self.mode == "measure":
            return measure_latency(model, example_inputs, self.backend, threads=self.threads).median_ms
        return self._ready_table(model, example_inputs).predict(model, example_inputs) + self.shift_ms

    def what_if(self, structure: ModelStructure, example_inputs: torch.Tensor) -> Callable[[dict[str, int]], float]:
        """Latency after removing channels from groups: table arithmetic, or pruning a copy and timing it."""
        example_inputs = self._batch(example_inputs)
        if self.mode == "lut":
            table = self._ready_table(structure.model, example_inputs)
            cost = table.what_if(structure, example_inputs, self.probes)

            def predicted(removed: dict[str, int]) -> float:
                ms = cost(removed)
                table.save_if_changed()
                return ms + self.shift_ms
            return predicted

        return lambda removed: self.of_model(pruned_copy(structure, removed).model, example_inputs)

    def final_report(self, model: nn.Module, example_inputs: torch.Tensor, base: nn.Module | None = None,
                     rounds: int = FINAL_ROUNDS) -> dict[str, Any]:
        """The final network's latency measured for real, beside the prediction (and the base's, if given).

        With ``base``, the two are measured in ``rounds`` interleaved rounds and the lowest median of each
        counts: a machine's speed drifts over a long run (this one's read the same network 2.0 and 2.5 ms an
        hour apart), so the final network is judged against the base measured alongside it
        (``latency_measured_ratio``), not only against milliseconds measured when the run began."""
        example_inputs = self._batch(example_inputs)
        nets = {"final": model, **({"base": base} if base is not None else {})}
        best = lowest_medians(nets, lambda net: measure_latency(net, example_inputs, self.backend, threads=self.threads),
                              rounds if base is not None else 1)
        real = best["final"]
        out: dict[str, Any] = {"latency_measured_ms": real.median_ms, "latency_measured_noise": real.noise,
                               "latency_mode": self.mode, "latency_platform": real.platform}
        if self.mode == "lut" and self.table is not None:
            out["latency_predicted_ms"] = self.table.predict(model, example_inputs) + self.shift_ms
            self.table.save_if_changed()
        if base is not None:
            out["base_latency_measured_ms"] = best["base"].median_ms
            out["latency_measured_ratio"] = real.median_ms / best["base"].median_ms
        return out

