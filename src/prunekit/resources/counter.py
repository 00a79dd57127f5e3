"""Counting a model's compute and size with torch's own FLOP counter."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


@dataclass(frozen=True)
class Resources:
    """A model's cost for one forward pass of the example inputs.

    Convention: ``flops = 2 * macs`` (one multiply-accumulate is two floating-point operations).
    MACs count convolutions and matrix products (what ``torch.utils.flop_counter`` counts; attention's
    products too, fused or not);
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


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Scaled dot-product attention's two matrix products, for the fused CPU kernel torch's counter has no entry
    for (its CUDA kernels have one): without it timm's and Hugging Face's attention counted as nothing."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_MAPPING: dict = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _MAPPING[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_attention_flops  # shapes given


@contextmanager
def _unfused_multihead_attention() -> Iterator[None]:
    """nn.MultiheadAttention and nn.TransformerEncoderLayer in eval mode run fused kernels that torch's counter
    does not count (a 2-layer encoder read 110 times too few MACs): count them on their plain path instead."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "get_fastpath_enabled"):
        yield
        return
    enabled = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(enabled)


def count(model: nn.Module, example_inputs) -> Resources:
    """MACs (per forward pass of ``example_inputs``) and parameters of ``model``, counted by torch's FLOP
    counter; see :class:`Resources`. (Latency is timed by :func:`prunekit.latency.measure_latency`.)"""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _unfused_multihead_attention(), \
                FlopCounterMode(display=False, custom_mapping=_MAPPING) as counter:
            model(*_as_tuple(example_inputs))
    finally:
        model.train(was_training)
    return Resources(macs=int(counter.get_total_flops()) // 2, params=count_params(model))


measure = count  # noqa: E305
"""Former name of :func:`count` (kept for existing code; prefer ``count``)."""
