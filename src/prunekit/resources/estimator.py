"""Fast resources of a network for any channel counts of its groups, from shapes recorded once.

NetAdapt asks "what would the network cost if group g kept k channels?" for every group and
every iteration. Measuring a pruned copy each time means deep-copying, pruning and tracing the
model; instead this records, once, every parameter tensor's shape (which of its dimensions each
channel group governs) and, for every convolution and linear layer, how many multiply-accumulates
one weight element costs (batch x output pixels for a convolution, rows for a linear layer: it
does not change when channels are pruned). Any widths then cost a few multiplications per layer.

The figures equal :func:`prunekit.resources.measure` on the really pruned model when every MAC
that torch's counter sees comes from convolution and linear weights; otherwise (e.g. attention's
activation-by-activation products) :attr:`ResourceEstimator.exact` is False and callers should
measure pruned copies instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from prunekit.resources.counter import Resources, count
from prunekit.structure import ModelStructure

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class _Tensor:
    shape: tuple[int, ...]
    macs_per_element: int = 0
    # dimension -> [(group name, elements per channel)]
    governed: dict[int, list[tuple[str, int]]] = field(default_factory=dict)

    def numel(self, removed: dict[str, int]) -> int:
        n = 1
        for d, size in enumerate(self.shape):
            for group, per_channel in self.governed.get(d, ()):
                size -= removed.get(group, 0) * per_channel
            n *= max(size, 0)
        return n


class ResourceEstimator:
    """MACs and parameters of ``structure.model`` after removing channels from its groups, without pruning it."""

    def __init__(self, structure: ModelStructure, example_inputs) -> None:
        model = structure.model
        self.widths = {g.name: g.channels for g in structure.groups}
        factors = _macs_per_weight(model, example_inputs)
        self._tensors: dict[int, _Tensor] = {}
        for name, p in model.named_parameters():
            self._tensors[id(p)] = _Tensor(tuple(p.shape), factors.get(name, 0))
        seen: set[tuple[int, int, str]] = set()
        for g in structure.groups:
            for s in structure.slices(g.name):
                key = (id(s.param), s.dim, g.name)
                t = self._tensors.get(id(s.param))
                if t is None or key in seen:
                    continue
                seen.add(key)
                t.governed.setdefault(s.dim, []).append((g.name, int(s.index.shape[1])))
        self.base = count(model, example_inputs)
        self.exact = self.estimate({}) == self.base

    def estimate(self, removed: dict[str, int]) -> Resources:
        """Resources after removing ``removed[g]`` channels from each group ``g`` (others unchanged)."""
        macs = params = 0
        for t in self._tensors.values():
            n = t.numel(removed)
            params += n
            macs += n * t.macs_per_element
        return Resources(macs=macs, params=params)

    def with_widths(self, widths: dict[str, int]) -> Resources:
        """Resources when each named group has the given width (others unchanged)."""
        return self.estimate({g: self.widths[g] - w for g, w in widths.items()})


def _macs_per_weight(model: nn.Module, example_inputs) -> dict[str, int]:
    """For each conv / linear weight (by parameter name): MACs per weight element in one forward pass."""
    factors: dict[str, int] = {}
    hooks = []

    def hook(name: str, module: nn.Module):
        def record(mod, inputs, output):
            x = inputs[0]
            if isinstance(mod, _CONV):
                factors[f"{name}.weight"] = factors.get(f"{name}.weight", 0) + output.shape[0] * output[0, 0].numel()
            elif isinstance(mod, _CONV_T):
                factors[f"{name}.weight"] = factors.get(f"{name}.weight", 0) + x.shape[0] * x[0, 0].numel()
            elif isinstance(mod, nn.Linear):
                factors[f"{name}.weight"] = factors.get(f"{name}.weight", 0) + x.numel() // x.shape[-1]
        return record

    for name, module in model.named_modules():
        if isinstance(module, (*_CONV, *_CONV_T, nn.Linear)):
            hooks.append(module.register_forward_hook(hook(name, module)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*(example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return factors
