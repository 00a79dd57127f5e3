"""Latency lookup tables: per-layer timings on one platform, summed and calibrated to predict a network.

A table maps layer signatures (see :mod:`prunekit.latency.sites`) to milliseconds measured on
one platform. :func:`build_lut` times every layer of a model at every width channel pruning can
reach (multiples of ``min_channels_step``; both input and output widths where both change), so
NetAdapt can price any candidate without running it.

Summing isolated layer timings is biased: the network also spends time outside leaf modules
(residual adds, reshapes, Python between calls) and a layer timed alone runs with warm caches.
So every table is *calibrated* per input shape: the whole network and uniformly thinned copies
of it (100 %, 75 %, 50 % and 25 % of every group's channels) are measured for real, and a line
``measured = scale * sum_of_layers + offset`` is fitted to those points (least squares).
Predictions are that line applied to the sum.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm

from prunekit.errors import PrunekitError
from prunekit.io import write_json
from prunekit.io.output import existing_ancestor
from prunekit.latency.interpolate import Interpolator
from prunekit.latency.measure import lowest_medians, measure_latency
from prunekit.latency.platforms import Platform, get_platform
from prunekit.latency.timing import CLOCKS
from prunekit.latency.sites import ProbeCache, Site, probe_sites, reachable_removals, trace_sites
from prunekit.structure import ModelStructure, analyze, pruned_copy

FORMAT = "prunekit-latency-table"
VERSION = 1
PLATFORM_KEYS = ("name", "device", "threads", "clock")
"""Fields of the platform record that must match for a table to be used (library versions only warn;
tables from before clocks were recorded were timed by the wall clock)."""
CALIBRATION_KEEP = (1.0, 0.75, 0.5, 0.25)
"""Share of every group's channels kept in the networks measured to calibrate a table."""
VERSION_KEYS = ("torch", "onnxruntime", "openvino", "cuda")
"""Library versions of the platform record: a table measured with others is used, with a warning."""
CALIBRATION_ROUNDS = 3
"""Interleaved measurement rounds of the calibration networks (the lowest median of each counts)."""
MAX_COMBINATIONS = 20000
"""A layer whose widths depend on more groups than this many combinations is timed on demand only."""


def check_table_path(path: str | Path, option: str = "--lut") -> Path:
    """Refuse a table path that can never be a file (a folder, or under a file), before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise PrunekitError(f"{option} {path} is a folder, not a latency table file (JSON); "
                            f"pass a file path such as {path / 'lut.json'}")
    parent = existing_ancestor(path)
    if parent is not None and not parent.is_dir():
        raise PrunekitError(f"{option} {path}: {parent} is a file, not a folder; pass a table path inside a folder")
    return path


def shape_key(example_inputs: torch.Tensor) -> str:
    """The input shape as a table key, e.g. ``1x3x32x32``."""
    return "x".join(map(str, example_inputs.shape))


class LatencyTable:
    """Measured per-layer latencies (ms) on one platform, with per-input-shape calibration.

    ``table.predict(model, x)`` estimates ``model``'s latency on ``x`` without running the whole
    network (missing layers are measured on demand and added); ``table.what_if(structure, x)``
    prices networks that are not built yet. ``save``/``load`` keep it as JSON.
    """

    def __init__(self, platform: str | Platform = "torch-cpu", threads: int | None = None, *,
                 entry_time_s: float = 0.02, record: dict[str, Any] | None = None, **options: Any) -> None:
        self.backend = get_platform(platform, **options)
        self.platform = self.backend.name
        self.record = record or self.backend.record(threads)
        self.threads = self.record.get("threads")
        self.entry_time_s = entry_time_s
        self.entries: dict[str, float] = {}
        self.unfinished: dict[str, int] = {}
        """Entries a build timed in fewer passes than the platform's ``table_trials`` (key: passes done): an
        interrupted build left them, and the next build takes their remaining passes."""
        self.interpolator = Interpolator(self.entries)
        self.calibration: dict[str, dict[str, Any]] = {}
        self.info: dict[str, Any] = {}
        self.path: Path | None = None
        self.autosave = True
        self.measured_on_demand = 0
        self._dirty = False
        self._saved_at = 0.0

    # -- timing ----------------------------------------------------------------------------------

    def time_layer(self, module: nn.Module, input_shape: tuple[int, ...], seconds: float | None = None) -> float:
        """Milliseconds of one call of ``module`` on a fresh random input of ``input_shape``: one timing of about
        ``seconds`` (default ``entry_time_s``; see each platform's ``time_layer``: on ONNX platforms the layer
        alone is exported and run)."""
        return self.backend.time_layer(module.eval(), torch.randn(input_shape), self.threads,
                                       self.entry_time_s if seconds is None else seconds)

    def time_entry(self, module: nn.Module, input_shape: tuple[int, ...]) -> float:
        """A table entry: the lowest of the platform's ``table_trials`` timings, sharing ``entry_time_s``."""
        trials = self.backend.table_trials
        return min(self.time_layer(module, input_shape, self.entry_time_s / trials) for _ in range(trials))

    def _add(self, key: str, ms: float, on_demand: bool) -> float:
        self.entries[key] = ms
        self._dirty = True
        if on_demand:  # timed by time_entry: every trial
            self.unfinished.pop(key, None)
            self.measured_on_demand += 1
            if self.autosave and self.path is not None and time.monotonic() - self._saved_at > 5:
                self.save()
        return ms

    def site_cost(self, site: Site, removed: dict[str, int] | None = None, on_demand: bool = True) -> float:
        """Milliseconds of one site after the removals: its entry; between measured widths of the same layer, their
        interpolation (see :mod:`prunekit.latency.interpolate`); else measured and added."""
        key = site.signature(removed)
        if key is None:  # a layer kind prunekit cannot rebuild: scale its own timing by its input size
            base = self.site_cost(site, None, on_demand)
            x, _ = site.shapes(removed or {})
            return base * math.prod(x) / max(1, math.prod(site.input_shape))
        ms = self.entries.get(key)
        if ms is not None:
            return ms
        ms = self.interpolator.estimate(site.module, *site.shapes(removed or {}))
        if ms is not None:
            return ms
        if not on_demand:
            raise PrunekitError(f"the latency table has no entry for {key}")
        layer = site.layer(removed)
        assert layer is not None
        return self._add(key, self.time_entry(*layer), on_demand=True)

    def layers_sum(self, sites: Iterable[Site], removed: dict[str, int] | None = None, on_demand: bool = True) -> float:
        """The uncalibrated prediction: the sum of every site's table entry."""
        return sum(self.site_cost(s, removed, on_demand) for s in sites)

    # -- calibration and prediction --------------------------------------------------------------

    def calibrated(self, raw_ms: float, example_inputs: torch.Tensor) -> float:
        """The calibrated prediction for a network whose layers sum to ``raw_ms`` (raw when not calibrated)."""
        c = self.calibration.get(shape_key(example_inputs))
        if c is None:
            return raw_ms
        return c["scale"] * raw_ms + c["offset"]

    def is_calibrated(self, example_inputs: torch.Tensor) -> bool:
        """Whether networks fed ``example_inputs``' shape have a calibration."""
        return shape_key(example_inputs) in self.calibration

    def predict(self, model: nn.Module, example_inputs: torch.Tensor, *, on_demand: bool = True) -> float:
        """Predicted latency (ms) of ``model`` on ``example_inputs`` (shape and batch) on this table's platform."""
        if not self.is_calibrated(example_inputs):
            warnings.warn(f"latency table not calibrated for input {shape_key(example_inputs)}: the prediction is "
                          "the raw sum of layer timings (call table.calibrate(model, x))", stacklevel=2)
        raw = self.layers_sum(trace_sites(model, example_inputs), None, on_demand)
        return self.calibrated(raw, example_inputs)

    def what_if(self, structure: ModelStructure, example_inputs: torch.Tensor,
                cache: ProbeCache | None = None) -> Callable[[dict[str, int]], float]:
        """A function: {group: channels removed} -> predicted latency (ms) of ``structure.model`` after those removals.

        Pass the same ``cache`` for successive versions of one network (NetAdapt's iterations) to
        probe each group only once."""
        sites = probe_sites(structure, example_inputs, cache)
        return lambda removed: self.calibrated(self.layers_sum(sites, removed), example_inputs)

    def calibrate(self, model: nn.Module, example_inputs: torch.Tensor, *, round_to: int = 8,
                  keep: Iterable[float] = CALIBRATION_KEEP, min_time_s: float = 0.5,
                  rounds: int = CALIBRATION_ROUNDS) -> dict[str, Any]:
        """Fit ``measured = scale * layers_sum + offset`` on ``model`` and uniformly thinned copies of it.

        Each network is measured for real (median of ``min_time_s`` seconds of runs) in ``rounds``
        interleaved rounds, and the lowest median counts: other jobs on a shared machine only ever
        add time, and a burst of them during one network's turn would tilt the line. Its layer sum
        comes from the table (missing layers measured); the fit is stored for this input shape.
        """
        structure = analyze(copy.deepcopy(model).eval(), example_inputs, round_to=round_to)
        nets = {share: pruned_copy(structure, {g.name: structure.round_removal(g.name, int(round((1 - share) * g.channels)))
                                               for g in structure.groups}).model for share in keep}
        best = lowest_medians(nets, lambda net: measure_latency(net, example_inputs, self.backend, threads=self.threads,
                                                                min_time_s=min_time_s), rounds)
        points = [{"keep": share, "layers_sum_ms": self.layers_sum(trace_sites(net, example_inputs)),
                   "measured_ms": best[share].median_ms, "noise": best[share].noise} for share, net in nets.items()]
        scale, offset = _fit_line([p["layers_sum_ms"] for p in points], [p["measured_ms"] for p in points])
        fit = {"scale": scale, "offset": offset, "rounds": max(1, rounds), "points": points}
        self.calibration[shape_key(example_inputs)] = fit
        self._dirty = True
        return fit

    # -- files -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"format": FORMAT, "version": VERSION, "platform": self.record, "entry_time_s": self.entry_time_s,
                "info": self.info, "calibration": self.calibration, "entries": dict(sorted(self.entries.items())),
                **({"unfinished": dict(sorted(self.unfinished.items()))} if self.unfinished else {})}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the table as JSON (atomically; default: where it was loaded from or last saved)."""
        path = Path(path or self.path or "")
        if not path.name:
            raise PrunekitError("latency table: no path to save to")
        write_json(path, self.to_dict())
        self.path, self._dirty, self._saved_at = path, False, time.monotonic()
        return path

    def save_if_changed(self) -> None:
        """Save to the table's path if entries or calibrations were added since the last save (and autosave is on)."""
        if self._dirty and self.path is not None and self.autosave:
            self.save()

    @classmethod
    def load(cls, path: str | Path, platform: str | Platform | None = None, threads: int | None = None, *,
             force: bool = False, **options: Any) -> "LatencyTable":
        """Read a table; refuse one measured on another platform (name, device, threads) unless ``force``.

        ``options`` make the platform (e.g. ``command=`` for ``"command"``) that measures missing entries."""
        path = check_table_path(path, "latency table")
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise PrunekitError(f"latency table {path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise PrunekitError(f"latency table {path} is not readable JSON ({err}); build it again with "
                                "`prunekit lut build` (the file was left as it is)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), dict):
            raise PrunekitError(f"{path} is not a prunekit latency table (the file was left as it is)")
        if doc.get("version") != VERSION:
            raise PrunekitError(f"latency table {path} has format version {doc.get('version')}; this prunekit reads {VERSION}")
        record = doc.get("platform") or {}
        record = {"clock": "wall", **record}
        if platform is None and record["clock"] in CLOCKS:  # a table named by its file alone keeps its clock
            options = {"clock": record["clock"], **options}
        table = cls(platform or record.get("name", "torch-cpu"), record.get("threads"),
                    entry_time_s=doc.get("entry_time_s", 0.02), record=record, **options)
        if platform is not None or not force:
            here = table.backend.record(threads if threads is not None else record.get("threads"))
            different = [k for k in PLATFORM_KEYS if record.get(k) != here.get(k)]
            if different and not force:
                theirs = ", ".join(f"{k} {record.get(k)!r}" for k in different)
                ours = ", ".join(f"{k} {here.get(k)!r}" for k in different)
                raise PrunekitError(f"latency table {path} was measured on another platform ({theirs}; here: {ours}); "
                                    "build one here, or force its use (--force-lut / force=True)")
            versions = [k for k in VERSION_KEYS if k in record and record.get(k) != here.get(k)]
            if versions and not different:
                warnings.warn(f"latency table {path} was measured with other library versions "
                              f"({', '.join(f'{k} {record[k]}' for k in versions)}); timings may differ", stacklevel=2)
        table.entries = {str(k): float(v) for k, v in doc["entries"].items()}
        unfinished = doc.get("unfinished") or {}
        if not isinstance(unfinished, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                       for v in unfinished.values()):
            raise PrunekitError(f"{path}: 'unfinished' is not a map of entries to passes (the file was left as it is)")
        # (a count at or above this platform's passes means done: such an entry is not listed)
        table.unfinished = {str(k): v for k, v in unfinished.items()
                            if k in table.entries and v < table.backend.table_trials}
        table.interpolator = Interpolator(table.entries)
        table.calibration = doc.get("calibration") or {}
        table.info = doc.get("info") or {}
        table.path = path
        table._saved_at = time.monotonic()
        return table

    def __getstate__(self) -> dict[str, Any]:
        # a copy sent to another process (a Ray worker) must not write the driver's file
        state = dict(self.__dict__)
        state["autosave"] = False
        state["path"] = None
        return state

    def __repr__(self) -> str:
        return (f"LatencyTable({self.platform} on {self.record.get('device')}, {self.record.get('threads')} threads, "
                f"{len(self.entries)} entries, calibrated for {sorted(self.calibration) or 'nothing'})")


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a x + b``; a ratio through the origin when the points cannot support a line."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if n >= 2 and var > 0:
        a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
        if a > 0:
            return a, my - a * mx
    return (my / mx if mx else 1.0), 0.0


def _combinations(structure: ModelStructure, site: Site) -> list[dict[str, int]]:
    groups = sorted(site.groups)
    options = [reachable_removals(structure, g) for g in groups]
    if math.prod(len(o) for o in options) > MAX_COMBINATIONS:
        return [{}]  # too many: the table keeps the layer as it is; other widths are timed on demand
    return [dict(zip(groups, combo)) for combo in itertools.product(*options)]


def build_lut(
    model: nn.Module,
    example_inputs: torch.Tensor,
    platform: str | Platform = "torch-cpu",
    *,
    min_channels_step: int = 8,
    threads: int | None = None,
    exclude: Iterable[str] = (),
    table: LatencyTable | None = None,
    calibrate: bool = True,
    entry_time_s: float = 0.02,
    progress: bool = True,
    save_to: str | Path | None = None,
) -> LatencyTable:
    """A latency table for ``model`` on ``platform``: every prunable layer timed at every reachable width.

    Widths are those pruning with step ``min_channels_step`` can leave (the full width and every
    multiple of the step below it), for the layer's input and output channels together where both
    change. Layers pruning never changes are timed once. Entries already in ``table`` (e.g. one
    loaded from a file) are reused, not measured again, except those an interrupted build timed in
    fewer passes than the platform's ``table_trials``: they get their remaining passes. The table
    is then calibrated against whole-network measurements for this input shape (see the module's
    docstring). With
    ``save_to``, the table is saved there every 30 s and when the build stops for any reason, so
    an interrupted build continues where it stopped when run again with that table.
    """
    t0 = time.perf_counter()
    table = table or LatencyTable(platform, threads, entry_time_s=entry_time_s)
    name = platform.name if isinstance(platform, Platform) else platform
    if table.platform != name:
        raise PrunekitError(f"the table is for platform {table.platform}, not {name}")
    structure = analyze(copy.deepcopy(model).eval(), example_inputs, round_to=min_channels_step, exclude=exclude)
    todo: dict[str, tuple[Site, dict[str, int]]] = {}
    for site in probe_sites(structure, example_inputs):
        for removed in _combinations(structure, site):
            key = site.signature(removed)
            if key is not None and (key not in table.entries or key in table.unfinished) and key not in todo:
                todo[key] = (site, removed)
    passes = table.backend.table_trials
    done = {key: table.unfinished.get(key, 0) if key in table.entries else 0 for key in todo}
    bar = tqdm(total=sum(passes - min(n, passes) for n in done.values()), desc=f"latency table ({table.platform})",
               disable=not progress or None, file=sys.stderr, unit="layer")
    saved_at = time.monotonic()
    try:
        # the platform's trials of an entry are taken in separate passes over the table: a slow spell of the
        # machine then touches one trial of many entries, not every trial of a few
        for n in range(passes):
            for key, (site, removed) in todo.items():
                if done[key] > n:  # this pass was taken by the build that was interrupted
                    continue
                ms = table.time_layer(*site.layer(removed), table.entry_time_s / passes)
                table._add(key, min(ms, table.entries[key]) if n else ms, on_demand=False)
                done[key] = n + 1
                if done[key] < passes:
                    table.unfinished[key] = done[key]
                else:
                    table.unfinished.pop(key, None)
                bar.update()
                if save_to is not None and time.monotonic() - saved_at > 30:
                    table.save(save_to)
                    saved_at = time.monotonic()
        if calibrate and not table.is_calibrated(example_inputs):
            table.calibrate(model, example_inputs, round_to=min_channels_step)
        table.info.setdefault("builds", []).append({
            "input": shape_key(example_inputs), "min_channels_step": min_channels_step, "measured": len(todo),
            "seconds": round(time.perf_counter() - t0, 1)})
    finally:  # what was measured is kept, even on Ctrl-C
        bar.close()
        if save_to is not None:
            table.save(save_to)
    return table
