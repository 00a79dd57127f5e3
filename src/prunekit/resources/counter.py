"""Counting a model's compute and size with torch's own FLOP counter."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Resources:
    """A model's cost for one forward pass of the example inputs.

    Convention: ``flops = 2 * macs`` (one multiply-accumulate is two floating-point operations).
    MACs count convolutions and matrix products (what ``torch.utils.flop_counter`` counts);
    element-wise layers (BatchNorm, activations, adds) are not counted. ``params`` counts every
    parameter element.
    """

    macs: int
    params: int

    @property
    def flops(self) -> int:
        """2 x MACs."""
        return 2 * self.macs

    def get(self, resource: str) -> float:
        """The figure named ``resource``: 'macs', 'flops' or 'params'."""
        if resource not in ("macs", "flops", "params"):
            raise ValueError(f"unknown resource {resource!r}; valid: macs, flops, params")
        return float(getattr(self, resource))

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form, FLOPs included."""
        return {**asdict(self), "flops": self.flops}


def _as_tuple(example_inputs) -> tuple:
    return example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def count(model: nn.Module, example_inputs) -> Resources:
    """MACs (per forward pass of ``example_inputs``) and parameters of ``model``, counted by torch's FLOP
    counter; see :class:`Resources`. (Latency is timed by :func:`prunekit.latency.measure_latency`.)"""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*_as_tuple(example_inputs))
    finally:
        model.train(was_training)
    return Resources(macs=int(counter.get_total_flops()) // 2, params=count_params(model))


measure = count  # noqa: E305
"""Former name of :func:`count` (kept for existing code; prefer ``count``)."""
