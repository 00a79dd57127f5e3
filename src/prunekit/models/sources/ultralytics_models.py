"""The ``ultralytics:NAME.yaml`` source: a YOLO model built from its yaml, random weights (``prunekit[ultralytics]``).

``NAME.yaml`` is one of the model yamls Ultralytics ships (``yolov8n.yaml``, ``yolo11s-seg.yaml``,
``yolov5n.yaml``: the letter after the version picks the scale, as in Ultralytics), or a path to
your own yaml (read here and recorded in the checkpoint). The model is built with
``ultralytics.nn.tasks.DetectionModel`` (or the segment / classify / pose / obb class its head
asks for) without downloading anything: ``YOLO_OFFLINE=1`` is set unless you set it, so that
importing Ultralytics makes no network check. Load your trained weights with ``--weights`` from a
state dict (``torch.save(YOLO("best.pt").model.state_dict(), "sd.pt")``): Ultralytics' own ``.pt``
files are pickled models, which prunekit never loads.

Every layer a yaml names must be a ``torch.nn`` / ``torchvision.ops`` / Ultralytics layer class and
its ``activation`` a ``nn.Class(literals)`` call: a yaml from a checkpoint is data, and Ultralytics
would otherwise look any name up in its module (or ``eval`` the activation).
"""

from __future__ import annotations

import ast
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.models.registry import Built, register_model_source
from prunekit.models.spec import is_plain_json
from prunekit.models.sources.optional import require

CLASSES = {"detect": "DetectionModel", "segment": "SegmentationModel", "classify": "ClassificationModel",
           "pose": "PoseModel", "obb": "OBBModel"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.ya?ml$")


class YOLOOutput(nn.Module):
    """An Ultralytics model whose forward returns one tensor in eval mode: its predictions (the first output)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        """The model's predictions (eval mode); its raw training outputs in train mode."""
        y = self.model(x)
        if isinstance(y, (tuple, list)) and y and isinstance(y[0], torch.Tensor):
            return y[0]
        return y


def _tasks(what: str) -> Any:
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no DNS probe at import
    return require("ultralytics.nn.tasks", "ultralytics", what)


def bundled_yaml(name: str, what: str) -> dict[str, Any]:
    """The config of a model yaml shipped with Ultralytics (``yolov8n.yaml`` -> ``v8/yolov8.yaml``, scale n)."""
    import ultralytics

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem) + Path(name).suffix
    found = {p.name: p for p in root.rglob("*.yaml")}
    path = found.get(name) or found.get(unified)
    if path is None:
        raise UnknownNameError(f"{what}: no such Ultralytics model yaml; valid: {', '.join(sorted(found))} "
                               "(a letter n/s/m/l/x after the version picks the scale), or a path to your own yaml")
    cfg = yaml.safe_load(path.read_text())
    scale = re.search(r"yolo(?:e-)?[v]?\d+([nslmx])", Path(name).stem)
    cfg["scale"] = scale.group(1) if scale else ""
    return cfg


def check_yaml(cfg: Any, tasks: Any, what: str) -> dict[str, Any]:
    """Refuse a config whose layers are not layer classes or whose activation is not ``nn.Class(literals)``."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("backbone"), list) or not isinstance(cfg.get("head"), list):
        raise PrunekitError(f"{what}: not a YOLO model yaml (needs backbone and head lists)")
    for layer in cfg["backbone"] + cfg["head"]:
        if not (isinstance(layer, list) and len(layer) == 4 and isinstance(layer[2], str)):
            raise PrunekitError(f"{what}: layer {layer!r} is not [from, repeats, module, args]")
        name = layer[2]
        if name.startswith("nn."):
            cls = getattr(torch.nn, name[3:], None)
        elif name.startswith("torchvision.ops."):
            import torchvision

            cls = getattr(torchvision.ops, name[16:], None)
        else:
            cls = vars(tasks).get(name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise PrunekitError(f"{what}: {name!r} is not a layer class Ultralytics or torch.nn provides")
    if cfg.get("activation") is not None and not _safe_activation(cfg["activation"]):
        raise PrunekitError(f"{what}: activation must be a torch.nn class call with literal arguments, e.g. nn.SiLU()")
    return cfg


def _safe_activation(text: Any) -> bool:
    try:
        call = ast.parse(str(text).strip(), mode="eval").body
        func, path = call.func, []  # type: ignore[attr-defined]
        while isinstance(func, ast.Attribute):
            path.append(func.attr)
            func = func.value
        path.append(func.id)  # type: ignore[attr-defined]
        cls = getattr(nn, path[0], None)
        for arg in [*call.args, *(k.value for k in call.keywords)]:  # type: ignore[attr-defined]
            ast.literal_eval(arg)
    except (SyntaxError, AttributeError, ValueError, TypeError):
        return False
    return path[1:] in (["nn"], ["nn", "torch"]) and isinstance(cls, type) and issubclass(cls, nn.Module)


@register_model_source("ultralytics")
def ultralytics_model(name: str, num_classes: int | None, in_channels: int, input_size: tuple[int, int],
                      kwargs: dict[str, Any]) -> Built:
    """A randomly initialised YOLO model (see the module docstring); ``num_classes`` None keeps the yaml's ``nc``."""
    what = f"ultralytics:{name}"
    tasks = _tasks(what)
    kwargs = dict(kwargs)
    cfg = kwargs.pop("cfg", None)
    scale = kwargs.pop("scale", None)
    if kwargs:
        raise PrunekitError(f"{what}: unknown argument(s) {', '.join(sorted(kwargs))}; options: scale (n/s/m/l/x)")
    if cfg is None and not _NAME.match(name):  # a path to the user's own yaml: recorded inline
        path = Path(name)
        if not path.is_file():
            raise PrunekitError(f"{what}: yaml file {path} does not exist")
        cfg, name = yaml.safe_load(path.read_text()), path.name
        if not is_plain_json(cfg):
            raise PrunekitError(f"{what}: {path} holds values other than plain JSON ones")
    elif cfg is None:
        d = bundled_yaml(name, what)
    if cfg is not None:
        d = dict(cfg)
    d = check_yaml(d, tasks, what)
    if scale is not None:
        if scale not in (d.get("scales") or {}):
            raise PrunekitError(f"{what}: scale must be one of {', '.join(d.get('scales') or {}) or '(none)'}")
        d["scale"] = scale
    if num_classes is not None:
        d["nc"] = num_classes
    task = tasks.guess_model_task(d)
    if task not in CLASSES:
        raise PrunekitError(f"{what}: {task or 'this'} model is not supported; tasks: {', '.join(CLASSES)}")
    ultra_log = logging.getLogger("ultralytics")
    level = ultra_log.level
    ultra_log.setLevel(logging.WARNING)  # classification models print a summary even when not verbose
    try:
        model = getattr(tasks, CLASSES[task])(d, ch=in_channels, verbose=False)
    finally:
        ultra_log.setLevel(level)
    record = {k: v for k, v in (("cfg", cfg), ("scale", scale)) if v is not None}
    return Built(YOLOOutput(model), f"ultralytics:{name}", record)
