"""Latency (milliseconds per forward pass on a platform) as a budgetable resource."""

from __future__ import annotations

from prunekit.resources.metric import MetricContext, ResourceMetric, register_resource


@register_resource("latency")
def latency(context: MetricContext) -> ResourceMetric:
    """Measured or table-predicted milliseconds on a platform (see prunekit.latency)."""
    from prunekit.latency.config import LatencyConfig
    from prunekit.latency.metric import LatencyMetric

    cfg = context.options.get("latency") or LatencyConfig()
    return LatencyMetric(platform=cfg.platform, mode=cfg.latency_mode, lut=cfg.lut, threads=cfg.threads,
                         batch_size=cfg.latency_batch, min_channels_step=max(context.min_channels_step, cfg.lut_step),
                         force_lut=cfg.force_lut, progress=context.progress, clock=cfg.latency_clock,
                         measure_command=cfg.measure_command)


latency.oneshot = False  # type: ignore[attr-defined]  # one-shot pruning has no latency options: NetAdapt prices it
