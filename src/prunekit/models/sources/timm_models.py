"""The ``timm:NAME`` source: any model of timm's registry, randomly initialised (``prunekit[timm]``)."""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.models.registry import register_model_source
from prunekit.models.sources.optional import require

REFUSED = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir", "num_classes",
           "in_chans")
"""timm.create_model arguments a model spec may not set: they download or read files, or prunekit sets them."""


@register_model_source("timm")
def timm_model(name: str, num_classes: int | None, in_channels: int, input_size: tuple[int, int],
               kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=..., in_chans=..., **kwargs)``.

    Nothing is downloaded (load your own weights with ``--weights FILE``). Models whose
    positional embeddings or windows fix the input size (timm's ``fixed_input_size``: ViT, DeiT,
    Swin, ...) are built for ``input_size`` (``img_size``) unless ``kwargs`` gives one.
    """
    timm = require("timm", "timm", f"timm:{name}")
    if not timm.is_model(name):  # also refuses hf-hub: and local-dir: names, which read remote or local files
        close = difflib.get_close_matches(name, timm.list_models(), n=5)
        hint = f"; close: {', '.join(close)}" if close else ""
        raise UnknownNameError(f"unknown timm model {name!r}{hint} (timm.list_models() lists them all)")
    refused = sorted(set(kwargs) & set(REFUSED))
    if refused:
        raise PrunekitError(f"timm:{name}: {', '.join(refused)} may not be given (prunekit downloads nothing and sets "
                            "num_classes / in_chans from the data): load your own weights with --weights FILE")
    args = dict(kwargs)
    if num_classes is not None:
        args["num_classes"] = num_classes
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is not None and getattr(cfg, "fixed_input_size", False) and "img_size" not in args:
        args["img_size"] = tuple(input_size)
    try:
        return timm.create_model(name, pretrained=False, in_chans=in_channels, **args)
    except TypeError as err:  # an argument the model's class does not take
        raise PrunekitError(f"timm:{name}: {err}") from None
