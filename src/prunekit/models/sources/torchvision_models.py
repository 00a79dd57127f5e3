"""The ``torchvision:NAME`` source: any torchvision classification or segmentation model, randomly initialised."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.models.external import adapt_input_channels
from prunekit.models.registry import register_model_source


def list_torchvision_models() -> list[str]:
    """Names of torchvision's classification and segmentation models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models) + segmentation_models())


def segmentation_models() -> list[str]:
    """Names of torchvision's segmentation models (``lraspp_mobilenet_v3_large``, ``deeplabv3_resnet50``, ...)."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models.segmentation)


class SegmentationOutput(nn.Module):
    """A torchvision segmentation model whose forward returns its per-pixel logits [N, C, H, W] (the ``out``
    entry of the dictionary it returns), so that losses, metrics, tracing and export see one tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The main head's logits."""
        return self.model(x)["out"]


@register_model_source("torchvision")
def torchvision_model(name: str, num_classes: int | None, in_channels: int, input_size: tuple[int, int],
                      kwargs: dict[str, Any]) -> nn.Module:
    """A randomly initialised torchvision classifier (or segmentation model) with ``num_classes`` outputs.

    Pretrained weights are not downloaded (this machine may have no network): pass your own with
    ``weights=FILE`` / ``--weights FILE``; a segmentation model's backbone is random too. A segmentation
    model returns its per-pixel logits (:class:`SegmentationOutput`; no auxiliary head). Other channel
    counts than 3 go through an adapter (:func:`prunekit.models.external.adapt_input_channels`).
    """
    import torchvision

    valid = list_torchvision_models()
    if name not in valid:
        raise UnknownNameError(f"unknown torchvision model {name!r}; valid: {', '.join(valid)}")
    kwargs = dict(kwargs)
    if kwargs.pop("weights", None) or kwargs.pop("weights_backbone", None):
        raise PrunekitError("prunekit does not download pretrained weights: load your own with --weights FILE "
                            "(Python: create_model(..., weights=FILE))")
    if name.startswith("inception") or name == "googlenet":
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", True)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    dense = name in segmentation_models()
    if dense:
        kwargs["weights_backbone"] = None
    try:
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    except TypeError as err:  # an argument the model's constructor does not take
        raise PrunekitError(f"torchvision:{name}: {err}") from None
    if dense:
        model = SegmentationOutput(model)
    return adapt_input_channels(model, in_channels)
