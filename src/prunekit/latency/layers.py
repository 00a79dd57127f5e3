"""Which layers cost the most: per-layer wall time of one forward pass in torch (what a user looks at first)."""

from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch import nn

from prunekit.latency.timing import pinned_threads, steady_allocator


def layer_costs(model: nn.Module, example_inputs: torch.Tensor, *, runs: int = 20, threads: int | None = None) -> list[dict]:
    """Mean milliseconds per pass spent in each leaf module (conv, linear, norm, activation, ...) over ``runs``
    passes, most expensive first, with each layer's share of the sum. Hooks add a little time to every
    layer: use it to rank layers, and :func:`prunekit.latency.measure_latency` for the network's figure."""
    steady_allocator()
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children()) and name]
    starts: dict[str, float] = {}
    samples: dict[str, list[float]] = defaultdict(list)
    hooks = []
    for name, module in leaves:
        hooks.append(module.register_forward_pre_hook(lambda m, i, name=name: starts.__setitem__(name, time.perf_counter())))
        hooks.append(module.register_forward_hook(
            lambda m, i, o, name=name: samples[name].append(time.perf_counter() - starts[name])))
    try:
        model.eval()
        with pinned_threads(threads), torch.inference_mode():
            model(example_inputs)  # warm-up, not recorded
            samples.clear()
            for _ in range(runs):
                model(example_inputs)
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for name, module in leaves:
        times = samples.get(name, [])
        if times:
            per_pass = sum(times) / runs  # a module called twice per pass counts twice
            rows.append({"layer": name, "type": type(module).__name__, "ms": per_pass * 1000})
    total = sum(r["ms"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r["ms"] / total
    return sorted(rows, key=lambda r: -r["ms"])
