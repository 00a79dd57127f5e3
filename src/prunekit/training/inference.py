"""Faster forward passes that give the same results: the channels-last layout for image batches, and BatchNorm
folded into the convolution or linear layer before it for evaluation. Each is used only where the model
allows it, and otherwise left out silently: they change speed, never what a model computes (beyond float
rounding)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import fx, nn
from torch.fx.experimental.optimization import fuse


def memory_format_for(model: nn.Module, example: torch.Tensor, channels_last: bool) -> torch.memory_format:
    """Channels-last when asked for, the input is an image batch and the model's forward accepts it (``model``
    is left in the returned format; a forward that cannot take it, e.g. ``x.view(n, -1)`` on a channels-last
    feature map, gets the contiguous format). The layout changes speed only, and results no more than float
    rounding."""
    if not channels_last or example.dim() != 4:
        return torch.contiguous_format
    was_training = model.training
    try:
        model.to(memory_format=torch.channels_last).eval()
        with torch.no_grad():
            model(example[:2].to(memory_format=torch.channels_last))
        return torch.channels_last
    except Exception:  # whatever fails here fails (or not) in the contiguous format too, where it is reported
        model.to(memory_format=torch.contiguous_format)
        return torch.contiguous_format
    finally:
        model.train(was_training)


@contextmanager
def memory_format(model: nn.Module, example: torch.Tensor, channels_last: bool = True) -> Iterator[torch.memory_format]:
    """:func:`memory_format_for` for the block; ``model`` is back in the contiguous format afterwards."""
    fmt = memory_format_for(model, example, channels_last)
    try:
        yield fmt
    finally:
        if fmt is torch.channels_last:
            model.to(memory_format=torch.contiguous_format)


FOLD_MIN_VALUES = 2**18
"""Fold BatchNorm for an evaluation over at least this many input values (about 330 images of 28x28): below it,
tracing and copying the model cost more than they save. A rule on the data alone, so that whether a run folds
(and so its last-digit rounding) never depends on timing."""

_FOLDABLE = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)
"""The layers that folding rewrites: each must be called once."""


def fused_for_inference(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` in eval mode with each BatchNorm folded into the convolution or linear layer that feeds
    only it (torch.fx's ``fuse``), when that is safe; otherwise ``model`` itself. Safe means: the model has
    BatchNorm to fold, traces symbolically, calls each of its convolution, linear and BatchNorm layers once (a
    shared layer folded at one call would change the others) and none of them has a forward hook (folding
    replaces the layer, and its hooks with it), and the copy's output on ``example`` matches the model's."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or model.training or not all(m.track_running_stats for m in norms):
        return model
    try:
        with warnings.catch_warnings():  # a model that does not trace is evaluated as it is: nothing to warn about
            warnings.simplefilter("ignore")
            traced = fx.symbolic_trace(model)
        modules = dict(traced.named_modules())
        called = [n.target for n in traced.graph.nodes
                  if n.op == "call_module" and isinstance(modules[n.target], _FOLDABLE)]
        hooked = any(modules[t]._forward_hooks or modules[t]._forward_pre_hooks for t in called)
        if len(called) != len(set(called)) or hooked:
            return model
        fused = fuse(traced, inplace=False, no_trace=True).eval()
        with torch.no_grad():
            same = _close(model(example), fused(example))
    except Exception:  # not traceable (data-dependent control flow, unusual outputs): evaluate it as it is
        return model
    return fused if same else model


def _close(a, b) -> bool:
    """Whether two outputs (tensors, or tuples / lists / dicts of them) agree to float rounding."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-4)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return False
