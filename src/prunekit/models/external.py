"""Models from outside the zoo: any torchvision classification model, adapted to the data."""

from __future__ import annotations

import torch
from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError


class RepeatChannels(nn.Module):
    """Feeds grayscale (1-channel) images to a 3-channel model by repeating the channel (no parameters)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat along the channel axis."""
        return x.repeat(1, self.times, 1, 1)


def list_torchvision_models() -> list[str]:
    """Names of torchvision's classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_model(
    name: str, num_classes: int, in_channels: int, input_size: tuple[int, int], **kwargs
) -> nn.Module:
    """A randomly initialised torchvision classifier with ``num_classes`` outputs.

    Pretrained weights are not downloaded (this machine may have no network): load your own
    state dict into it. A 1-channel input is repeated to 3 channels; other channel counts go
    through a 1x1 convolution to 3.
    """
    import torchvision

    valid = list_torchvision_models()
    if name not in valid:
        raise UnknownNameError(f"unknown torchvision model {name!r}; valid: {', '.join(valid)}")
    if kwargs.get("weights"):
        raise PrunekitError(
            "prunekit does not download pretrained weights; build the model with weights=None and "
            "load a state dict you already have (torch.load + model.load_state_dict)"
        )
    kwargs.pop("weights", None)
    if name.startswith("inception") or name == "googlenet":
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", True)
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    if in_channels == 3:
        return model
    adapter: nn.Module = RepeatChannels(3) if in_channels == 1 else nn.Conv2d(in_channels, 3, 1)
    return nn.Sequential(adapter, model)
