"""A training run's resumable state: weights, optimizer buffers and the data order's generator,
saved after every epoch as safetensors + JSON (no pickle), so that a killed run continues where
it stopped and ends exactly as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io.atomic import atomic_write, read_json, write_json

TENSORS = "train_state.safetensors"
PROGRESS = "train_state.json"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's per-parameter state split into tensors and JSON-ready numbers."""
    tensors, numbers = {}, {}
    for idx, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                numbers[f"{idx}.{key}"] = value
    return tensors, numbers


def save_train_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                     progress: dict[str, Any]) -> None:
    """Write the state after an epoch: tensors first, then the JSON that says they are complete."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_numbers = _optimizer_tensors(optimizer)
    tensors.update(opt_tensors)
    tensors["generator"] = generator.get_state()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / TENSORS, lambda tmp: save_file(tensors, tmp))
    write_json(folder / PROGRESS, {**progress, "optimizer_numbers": opt_numbers})


def load_train_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                     expect: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Restore a saved state into ``model``, ``optimizer`` and ``generator`` when ``folder`` holds one made
    with the same settings (``expect``); returns its progress record, or None when there is nothing to resume.

    A training setting added to prunekit after the state was saved counts as the same when it is at its
    default (``defaults``): upgrading prunekit must not strand an unfinished run."""
    if not (folder / PROGRESS).is_file() or not (folder / TENSORS).is_file():
        return None
    try:
        progress = read_json(folder / PROGRESS)
        tensors = load_file(str(folder / TENSORS))
    except (OSError, ValueError, json.JSONDecodeError) as err:
        raise PrunekitError(f"the training state in {folder} is unreadable ({err}); delete that folder to start over") from None
    saved = {k: progress.get(k) for k in expect}
    if isinstance(saved.get("config"), dict) and defaults:
        saved["config"] = {**{k: v for k, v in defaults.items() if k not in saved["config"]}, **saved["config"]}
    if saved != expect:
        changed = ", ".join(k for k in expect if saved[k] != expect[k])
        raise PrunekitError(f"{folder} holds an unfinished training run with other settings ({changed}); "
                            "run with the same settings to resume it, or delete that folder to start over")
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    opt = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in progress.get("optimizer_numbers", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt["state"] = state
    optimizer.load_state_dict(opt)
    generator.set_state(tensors["generator"])
    return progress
