"""A user's own trained weights onto any model: a ``.safetensors`` file or a ``torch.save``-d state dict.

No pickle is loaded: ``torch.load`` runs with ``weights_only=True``, which refuses anything but
tensors and plain containers (a whole pickled model, such as an Ultralytics ``.pt``, is refused
with a line saying how to save its state dict instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")
"""Keys under which training scripts commonly nest the state dict itself."""


def _first_line(err: BaseException, limit: int = 200) -> str:
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, by name (a nested ``{"state_dict": {...}}`` is unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise PrunekitError(f"weights file {path} does not exist (prunekit downloads nothing: pass a .safetensors file "
                            "or a state dict saved with torch.save)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input error
            raise PrunekitError(f"weights file {path} is not a readable safetensors file: {_first_line(err)}") from None
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise PrunekitError(f"weights file {path} is not a plain state dict (read with torch.load(weights_only=True), "
                            f"which loads no code): {_first_line(err)}; save model.state_dict() with torch.save, or "
                            "use a .safetensors file") from None
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict) and not isinstance(obj.get(key), torch.Tensor):
            if all(isinstance(v, torch.Tensor) for v in obj[key].values()):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                        for k, v in obj.items()):
        raise PrunekitError(f"weights file {path} holds no state dict (a mapping of parameter names to tensors)")
    return obj


def _strip(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _target(model: nn.Module, sd: dict[str, torch.Tensor]) -> tuple[str, nn.Module, set[str]]:
    """The module whose state dict has the file's keys (the model, or a wrapped library model inside it);
    else the closest one, with its keys, for the error message."""
    keys = set(sd)
    best = ("", model, set(model.state_dict()))
    for name, module in model.named_modules():
        own = set(module.state_dict())
        if own == keys:
            return name, module, own
        if len(own & keys) > len(best[2] & keys):
            best = (name, module, own)
    return best


def load_weights(model: nn.Module, path: str | Path, what: str = "the model") -> nn.Module:
    """Load the weights file at ``path`` into ``model`` (or the library model it wraps); one clear line
    naming the file when keys or shapes do not match. Returns ``model``."""
    sd = _strip(read_state_dict(path), "module.")  # saved from DataParallel / DistributedDataParallel
    name, target, own = _target(model, sd)
    missing, unexpected = sorted(own - set(sd)), sorted(set(sd) - own)
    if missing or unexpected:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

        raise PrunekitError(f"weights file {path} does not fit {what}: {len(missing)} missing keys ({some(missing)}), "
                            f"{len(unexpected)} unexpected ({some(unexpected)})")
    state = target.state_dict()
    for key, value in sd.items():
        if tuple(value.shape) != tuple(state[key].shape):
            raise PrunekitError(f"weights file {path} does not fit {what}: {key} is {list(value.shape)} in the file, "
                                f"{list(state[key].shape)} in the model (other num_classes, in_channels or model "
                                "arguments?)")
    target.load_state_dict(sd, strict=True)
    return model
