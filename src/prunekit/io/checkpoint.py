"""The checkpoint folder every prunekit command reads and writes, loadable without unpickling code.

Layout of a checkpoint folder::

    model.safetensors   weights (safetensors: plain tensors, no code)
    model.json          how to rebuild the ORIGINAL model (zoo or source name and arguments, or a
                        factory path: imported only when the user allows it), the input shape,
                        and the pruning plan (kept channels of every pruned group) to re-apply
    metrics.json        test_accuracy, val_accuracy (0-1), macs, flops, params, ...

Loading builds the original model, re-applies the plan, then loads the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io.atomic import atomic_write, read_json, write_json
from prunekit.io.checks import INPUT_DTYPES, check_description, check_weights_file
from prunekit.models.registry import (
    ModelSpec, attach_spec, build_model, list_models, parameter_bytes, short_repr, spec_of,
)
from prunekit.models.trust import check_trusted

FORMAT = "prunekit-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
DESCRIPTION = "model.json"
METRICS = "metrics.json"
PLAN_ATTR = "_prunekit_plan"
INPUT_ATTR = "_prunekit_input_shape"


def plan_of(model: nn.Module) -> dict | None:
    """The pruning plan (JSON form) recorded on ``model`` by the pruning code, if any."""
    return getattr(model, PLAN_ATTR, None)


def attach_plan(model: nn.Module, plan: dict | None) -> nn.Module:
    """Record the pruning plan (JSON form) on ``model``; returns ``model``."""
    setattr(model, PLAN_ATTR, plan)
    return model


INPUT_DTYPE_ATTR = "_prunekit_input_dtype"


def input_dtype_of(model: nn.Module) -> torch.dtype:
    """The type of the inputs ``model`` was pruned on (recorded by the pruning code; default float32)."""
    return getattr(model, INPUT_DTYPE_ATTR, torch.float32)


def attach_input_dtype(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Record the input type (token ids: an integer type) on ``model``, when a checkpoint can record it (one of
    INPUT_DTYPES; other types are not recorded, and loading replays the plan on float32 as before); returns
    ``model``."""
    if _dtype_name(dtype) in INPUT_DTYPES:
        setattr(model, INPUT_DTYPE_ATTR, dtype)
    return model


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def input_shape_of(model: nn.Module) -> tuple[int, ...] | None:
    """The (C, H, W) input shape recorded on ``model``, if any."""
    return getattr(model, INPUT_ATTR, None)


def attach_input_shape(model: nn.Module, shape) -> nn.Module:
    """Record the (C, H, W) input shape on ``model``; returns ``model``."""
    setattr(model, INPUT_ATTR, tuple(int(s) for s in shape))
    return model


@dataclass
class Checkpoint:
    """A loaded checkpoint folder."""

    model: nn.Module
    path: Path
    spec: ModelSpec | None
    input_shape: tuple[int, ...]
    plan: dict | None
    metrics: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    input_dtype: torch.dtype = torch.float32

    def example_inputs(self, batch_size: int = 1) -> torch.Tensor:
        """A zero batch of the model's input shape and type."""
        return torch.zeros(batch_size, *self.input_shape, dtype=self.input_dtype)


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    *,
    spec: ModelSpec | None = None,
    input_shape=None,
    plan: dict | None = None,
    metrics: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a checkpoint folder (see the module docstring); returns the folder.

    ``spec``, ``input_shape`` and ``plan`` default to what is recorded on the model (models from
    :func:`prunekit.create_model` and from the pruning functions carry them). A model without a
    spec still saves: loading it then needs a fresh instance of the original model.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = spec or spec_of(model)
    plan = plan if plan is not None else plan_of(model)
    input_shape = input_shape if input_shape is not None else input_shape_of(model)
    if input_shape is None and spec is not None and spec.name in list_models():  # the zoo's are image models
        input_shape = (spec.in_channels, *spec.input_size)
    if input_shape is None:
        raise PrunekitError("save needs the model's input shape (C, H, W): pass input_shape=")
    dtype = input_dtype_of(model)
    description = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": spec.to_dict() if spec else None,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "input_shape": [int(s) for s in input_shape],
        **({"input_dtype": _dtype_name(dtype)} if dtype != torch.float32 else {}),
        "plan": plan,
        "meta": meta or {},
    }
    atomic_write(directory / WEIGHTS, lambda tmp: save_model(model, tmp))
    write_json(directory / DESCRIPTION, description)
    if metrics is not None:
        write_json(directory / METRICS, metrics)
    return directory


def first_mismatch(err: BaseException) -> str:
    """The first problem a failed ``load_state_dict`` lists (a missing or unexpected key, or a size mismatch),
    on one line, with how many more there are."""
    lines = [line.strip() for line in str(err).strip().splitlines()]
    problems: list[str] = []
    for line in lines[1:]:
        keys = re.match(r"(Missing|Unexpected) key\(s\) in state_dict: (.*)", line)
        if keys:
            names = re.findall(r'"([^"]*)"', keys.group(2)) or [keys.group(2)]
            where = f"in the model, not in {WEIGHTS}" if keys.group(1) == "Missing" else f"in {WEIGHTS}, not in the model"
            problems += [f'{keys.group(1).lower()} key "{name}" ({where})' for name in names]
        elif line:
            problems.append(re.sub(r"torch\.Size\((\[[^]]*\])\)", r"\1", line).rstrip("."))
    if not problems:
        return (lines[0] if lines else type(err).__name__)[:300]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0][:300] + more


def read_description(directory: str | Path) -> dict[str, Any]:
    """``model.json`` of a checkpoint folder, checked to be one."""
    directory = Path(directory)
    if directory.is_file():
        raise PrunekitError(f"checkpoint {directory} is a file: give the checkpoint folder (the one holding "
                            f"{DESCRIPTION})")
    if not directory.is_dir():
        raise PrunekitError(f"checkpoint folder {directory} does not exist")
    path = directory / DESCRIPTION
    if not path.is_file() or not (directory / WEIGHTS).is_file():
        raise PrunekitError(f"{directory} is not a prunekit checkpoint (needs {DESCRIPTION} and {WEIGHTS})")
    desc = read_json(path)  # a damaged file is one error naming it
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise PrunekitError(f"{path} is not a prunekit checkpoint description")
    check_description(desc, path)
    check_weights_file(directory / WEIGHTS)
    return desc


OVERSIZE_BYTES = 2**32
OVERSIZE_RATIO = 100
"""A description whose unpruned model holds more than OVERSIZE_BYTES (4 GiB) and more than OVERSIZE_RATIO times
its weights file is refused before it is built: pruning does not take a model to a hundredth of its size, a
damaged or edited ``model.json`` (num_classes 10**7, a width multiplier of 500) does, and building it would
take minutes and the machine's memory before the weights' mismatch is seen."""


def _check_size_against_weights(spec: ModelSpec, directory: Path, origin: str) -> None:
    """Refuse a description that asks for a model far larger than the weights saved beside it (see OVERSIZE_BYTES)."""
    weights = (directory / WEIGHTS).stat().st_size
    if weights * OVERSIZE_RATIO >= OVERSIZE_BYTES:
        return
    wanted = parameter_bytes(spec)
    if wanted is not None and wanted > OVERSIZE_BYTES and wanted > OVERSIZE_RATIO * weights:
        extra = f", arguments {short_repr(spec.kwargs)}" if spec.kwargs else ""
        raise PrunekitError(f"{origin} describes a {spec.name} model of {wanted / 2**30:.1f} GiB (num_classes "
                            f"{spec.num_classes}, in_channels {spec.in_channels}, input_size {list(spec.input_size)}"
                            f"{extra}) beside {weights / 2**20:.1f} MiB of weights; the file is damaged or edited: "
                            "restore it or save the checkpoint again")


def load_checkpoint(
    directory: str | Path,
    model: nn.Module | None = None,
    *,
    model_factory: str | None = None,
    trust_factory: bool = False,
) -> Checkpoint:
    """Load a checkpoint folder: build the original model (or use ``model``, a fresh instance of
    it), re-apply the pruning plan, load the weights. No pickle is involved, and no code named by
    the folder runs: its model must come from the zoo or a trusted source, unless it names a
    ``package.module:function`` factory that the caller allows, by naming it again
    (``model_factory``) or with ``trust_factory=True`` (see :mod:`prunekit.models.trust`)."""
    directory = Path(directory)
    desc = read_description(directory)
    origin = f"checkpoint {directory / DESCRIPTION}"
    spec = ModelSpec.from_dict(desc["model"], origin) if desc.get("model") is not None else None
    input_shape = tuple(desc["input_shape"])
    dtype = getattr(torch, desc.get("input_dtype", "float32"))  # one of INPUT_DTYPES: checked on reading
    if model is None:
        if spec is None:
            raise PrunekitError(
                f"{directory} was saved from a model prunekit did not build: pass a fresh instance "
                "of the original model (prunekit.load(dir, model=MyNet()))"
            )
        check_trusted(spec.name, origin, model_factory, trust_factory)
        _check_size_against_weights(spec, directory, origin)
        model = build_model(spec, origin)
    elif spec is not None:
        attach_spec(model, spec)
    plan = desc.get("plan")
    if plan:
        from prunekit.structure import PruningPlan, apply_plan

        apply_plan(model, torch.zeros(1, *input_shape, dtype=dtype), PruningPlan.from_dict(plan))
    try:
        load_model(model, str(directory / WEIGHTS), strict=True)
    except (RuntimeError, KeyError, ValueError) as err:
        raise PrunekitError(f"checkpoint {directory} does not match its model: {first_mismatch(err)}; "
                            f"its {WEIGHTS} and {DESCRIPTION} are from different models") from None
    model.eval()
    attach_plan(model, plan)
    attach_input_shape(model, input_shape)
    if dtype != torch.float32:
        attach_input_dtype(model, dtype)
    metrics = read_json(directory / METRICS) if (directory / METRICS).is_file() else {}
    return Checkpoint(model, directory, spec, input_shape, plan, metrics, desc.get("meta", {}), dtype)
