"""Checks that a checkpoint folder's files are what they claim to be, before anything is built from them:
each failure is one line naming the file and what to do (a damaged file is never half-used)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prunekit.errors import PrunekitError, first_line

DAMAGED = "the file was edited or damaged: restore it, or write the checkpoint again"
INPUT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
"""The input types a checkpoint may record (``input_dtype``; absent means float32): token ids, raw uint8 images..."""


def check_weights_file(path: str | Path) -> None:
    """Refuse a weights file that is not a complete safetensors file (only its header is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            f.keys()
    except Exception as err:  # noqa: BLE001  (safetensors raises its own error type)
        raise PrunekitError(f"{path} is not a readable safetensors file ({first_line(err)}); {DAMAGED}") from None


def _positive_ints(value: Any) -> bool:
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))


def check_description(desc: dict[str, Any], path: str | Path) -> None:
    """Refuse a ``model.json`` whose fields have the wrong form (before any model is built from it)."""
    if not _positive_ints(desc.get("input_shape")):
        raise PrunekitError(f"{path}: 'input_shape' must be a list of positive integers, got "
                            f"{desc.get('input_shape')!r}; {DAMAGED}")
    if desc.get("input_dtype", "float32") not in INPUT_DTYPES:
        raise PrunekitError(f"{path}: 'input_dtype' must be one of {', '.join(INPUT_DTYPES)}, got "
                            f"{desc.get('input_dtype')!r}; {DAMAGED}")
    for key in ("model", "plan"):
        if desc.get(key) is not None and not isinstance(desc[key], dict):
            raise PrunekitError(f"{path}: {key!r} must be a JSON object or null; {DAMAGED}")
    if not isinstance(desc.get("meta", {}), dict):
        raise PrunekitError(f"{path}: 'meta' must be a JSON object; {DAMAGED}")
    for key in ("data", "train"):
        value = desc.get("meta", {}).get(key)
        if value is not None and not isinstance(value, dict):
            raise PrunekitError(f"{path}: 'meta.{key}' must be a JSON object; {DAMAGED}")
