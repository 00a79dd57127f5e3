"""Adapters shared by the model sources: feed a library's 3-channel model other channel counts."""

from __future__ import annotations

import torch
from torch import nn


class RepeatChannels(nn.Module):
    """Feeds grayscale (1-channel) images to a 3-channel model by repeating the channel (no parameters)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat along the channel axis."""
        return x.repeat(1, self.times, 1, 1)


def adapt_input_channels(model: nn.Module, in_channels: int, expected: int = 3) -> nn.Module:
    """``model`` itself for ``expected`` channels; else ``Sequential(adapter, model)``: a 1-channel input
    repeated, other counts through a 1x1 convolution."""
    if in_channels == expected:
        return model
    adapter: nn.Module = RepeatChannels(expected) if in_channels == 1 else nn.Conv2d(in_channels, expected, 1)
    return nn.Sequential(adapter, model)

