"""What a latency platform is: a runtime that can time a network, with a record of what it ran on.

A platform is a small class registered under its name (see :mod:`prunekit.latency.platforms`).
Most platforms only say how to build a prepared forward call (:meth:`Platform.session`); the
base class times it. Platforms that run the network somewhere else (a command on a device)
override :meth:`Platform.measure` itself.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.latency.timing import LatencyResult, check_clock, cpu_name, repeat, summarise, timed


class Platform:
    """Base class of latency platforms.

    Subclasses set ``requires`` (modules that must import) and ``extra`` (the ``prunekit[...]``
    extra that installs them), and implement :meth:`session`; ``record`` adds what identifies
    their timings (library versions). Options (e.g. a command line) are keyword arguments of the
    constructor; every platform that times runs in this process takes ``clock`` (``"wall"``, the
    default, or ``"cpu"``: this process's CPU time, for one thread on a shared machine; see
    :data:`prunekit.latency.timing.CLOCKS`); other options are refused.
    """

    name: ClassVar[str] = ""
    """Set by :func:`prunekit.latency.platforms.register_platform`."""
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    table_trials: ClassVar[int] = 1
    """Independent timings of each lookup-table entry, the lowest kept (see :func:`prunekit.latency.build_lut`)."""

    def __init__(self, clock: str = "wall", **options: Any) -> None:
        if options:
            raise PrunekitError(f"platform {self.name} takes no settings, got {', '.join(sorted(options))} "
                                "(--measure-command is for --platform command)")
        check_clock(clock)
        self.clock = clock

    def options(self) -> dict[str, Any]:
        """The options this platform was made with."""
        return {"clock": self.clock}

    # -- availability -----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise one clear error when this platform's runtime is missing here (naming the extra to install)."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError:
                hint = f": pip install 'prunekit[{self.extra}]'" if self.extra else ""
                raise PrunekitError(f"platform {self.name} needs the {module} package{hint}") from None

    def available(self) -> bool:
        """Whether :meth:`check` passes."""
        try:
            self.check()
        except PrunekitError:
            return False
        return True

    # -- measuring --------------------------------------------------------------------------------

    def record(self, threads: int | None = None) -> dict[str, Any]:
        """What identifies this platform's timings: name, device, threads, clock (subclasses add library versions)."""
        self.check()
        threads = threads or torch.get_num_threads()
        if self.clock == "cpu" and threads != 1:
            raise PrunekitError(f"the cpu clock times one thread: use --threads 1 (not {threads}), or the wall clock")
        return {"name": self.name, "device": cpu_name(), "threads": threads, "clock": self.clock}

    def session(self, model: nn.Module, example_inputs: torch.Tensor, threads: int | None) -> Callable[[], Any]:
        """A prepared call that runs one forward pass of ``example_inputs`` (what :meth:`measure` times)."""
        raise NotImplementedError

    def measure(self, model: nn.Module, example_inputs: torch.Tensor, *, threads: int | None = None,
                warmup: int = 10, repeats: int = 30, min_time_s: float = 0.5) -> LatencyResult:
        """Time :meth:`session` on this platform's clock: ``warmup`` untimed runs, then at least ``repeats`` runs and
        ``min_time_s`` seconds."""
        record = {**self.record(threads), "batch_size": int(example_inputs.shape[0])}
        run = self.session(model, example_inputs, record.get("threads"))
        return summarise(repeat(timed(run, self.clock), warmup, repeats, min_time_s), record)

    def time_layer(self, module: nn.Module, x: torch.Tensor, threads: int | None, total_s: float) -> float:
        """Milliseconds of one layer on input ``x``, for a lookup table (a short :meth:`measure` by default)."""
        return self.measure(module, x, threads=threads, warmup=3, repeats=7, min_time_s=total_s).median_ms

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({options})"
