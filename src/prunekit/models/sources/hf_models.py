"""The ``hf:ARCH`` source: a Hugging Face ``transformers`` classifier built from a config (``prunekit[transformers]``).

``ARCH`` is a model type (``hf:bert``, ``hf:vit``: that type's default config), a local config
file or folder (``hf:/path/config.json``, ``hf:./my-model``), or a model type with
``config=PATH`` or ``config={...}`` among the arguments; other arguments override config fields
(``hidden_size=192``). Nothing is downloaded and no remote code runs: the model is
``AutoModelFor{Image,Sequence}Classification.from_config(config, trust_remote_code=False)``, with
random weights (load yours with ``--weights FILE``). The checkpoint records the whole config, so
it loads without the original file.

The model is wrapped to take one tensor and return the logits, as prunekit expects: images
``[B, C, H, W]`` (``pixel_values``), or token ids ``[B, L]`` (``input_ids``; floats are cast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.models.registry import Built, register_model_source
from prunekit.models.sources.optional import require

TASKS = {"image-classification": "AutoModelForImageClassification",
         "sequence-classification": "AutoModelForSequenceClassification"}
REFUSED_FIELDS = ("auto_map", "trust_remote_code", "quantization_config", "custom_pipelines")
"""Config fields that would import or fetch code: refused."""
ATTENTION = (None, "eager", "sdpa")
DROPPED = ("transformers_version", "model_type", "id2label", "label2id", "_name_or_path", "_commit_hash")


class HFClassifier(nn.Module):
    """A transformers classifier called with one tensor, returning its logits."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images (``pixel_values``) or of token ids (``input_ids``)."""
        if self.task == "sequence-classification":
            return self.model(input_ids=x.long()).logits
        return self.model(pixel_values=x).logits


def _read_config(path: str, what: str) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise PrunekitError(f"{what}: config file {p} does not exist (prunekit downloads nothing: pass a local "
                            "config.json or folder)")
    try:
        config = json.loads(p.read_text())
    except (ValueError, OSError) as err:
        raise PrunekitError(f"{what}: {p} is not a JSON config: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise PrunekitError(f"{what}: {p} is not a transformers config (no \"model_type\")")
    return config


def _config_fields(name: str, kwargs: dict[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    """(model type, config fields) from the name, a ``config`` argument and field overrides."""
    config = kwargs.pop("config", None)
    if "/" in name or name.endswith(".json"):
        fields, model_type = _read_config(name, what), None
    elif isinstance(config, str):
        fields, model_type = _read_config(config, what), name or None
    elif isinstance(config, dict):
        fields, model_type = dict(config), name or None
    elif config is None:
        fields, model_type = {}, name
    else:
        raise PrunekitError(f"{what}: config must be a path or a JSON object")
    model_type = model_type or fields.get("model_type")
    if fields.get("model_type", model_type) != model_type:
        raise PrunekitError(f"{what}: the config is for {fields['model_type']!r}, not {model_type!r}")
    fields.update(kwargs)
    refused = sorted(set(fields) & set(REFUSED_FIELDS))
    if refused:
        raise PrunekitError(f"{what}: config fields {', '.join(refused)} would load code or packages: remove them")
    for key in ("attn_implementation", "_attn_implementation"):
        if fields.get(key) not in ATTENTION:
            raise PrunekitError(f"{what}: {key} must be eager or sdpa, got {fields[key]!r}")
    return model_type, {k: v for k, v in fields.items() if k not in ("model_type", "auto_map")}


def _task(transformers: Any, model_type: str, task: str | None, what: str) -> str:
    auto = transformers.models.auto.modeling_auto
    image = model_type in auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES
    text = model_type in auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
    task = task or ("image-classification" if image else "sequence-classification" if text else None)
    if task not in TASKS:
        raise PrunekitError(f"{what}: task must be one of {', '.join(TASKS)}" + ("" if task else
                            f" (transformers has no classifier for model type {model_type!r})"))
    if not (image if task == "image-classification" else text):
        raise PrunekitError(f"{what}: transformers has no {task} model for {model_type!r}")
    return task


@register_model_source("hf")
def hf_model(name: str, num_classes: int | None, in_channels: int, input_size: tuple[int, int],
             kwargs: dict[str, Any]) -> Built:
    """A randomly initialised transformers classifier (see the module docstring)."""
    what = f"hf:{name}"
    transformers = require("transformers", "transformers", what)
    kwargs = dict(kwargs)
    task_arg = kwargs.pop("task", None)
    model_type, fields = _config_fields(name, kwargs, what)
    if model_type not in transformers.CONFIG_MAPPING:
        raise PrunekitError(f"{what}: unknown transformers model type {model_type!r}")
    task = _task(transformers, model_type, task_arg, what)
    config = transformers.AutoConfig.for_model(model_type, **fields)
    if num_classes is not None:
        config.num_labels = num_classes
    if task == "image-classification":
        if hasattr(config, "num_channels"):
            config.num_channels = in_channels
        if hasattr(config, "image_size"):
            config.image_size = input_size[0] if input_size[0] == input_size[1] else list(input_size)
    auto = getattr(transformers, TASKS[task])
    model = auto.from_config(config, trust_remote_code=False)
    record = json.loads(config.to_json_string(use_diff=True))
    record = {k: v for k, v in record.items() if k not in DROPPED}
    record["num_labels"] = config.num_labels
    return Built(HFClassifier(model, task), f"hf:{model_type}", {"task": task, "config": record})
