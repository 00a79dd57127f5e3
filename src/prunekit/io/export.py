"""Exporting a model for deployment: ONNX (for ONNX Runtime) or TorchScript."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from prunekit.errors import PrunekitError
from prunekit.io.atomic import atomic_write

FORMATS = ("onnx", "torchscript")


def export_model(model: nn.Module, example_inputs: torch.Tensor, path: str | Path, fmt: str, *,
                 dynamic_batch: bool = False) -> Path:
    """Write ``model`` traced on ``example_inputs`` to ``path`` as ONNX (opset 17) or TorchScript.

    ``dynamic_batch``: the ONNX file accepts any batch size (default: the example's)."""
    if fmt not in FORMATS:
        raise PrunekitError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    model = model.eval()
    if fmt == "torchscript":
        with torch.no_grad():
            model(example_inputs)  # a model that caches on its first call (YOLO heads: anchors) then traces alike twice
            traced = torch.jit.trace(model, example_inputs)
        return atomic_write(path, lambda tmp: traced.save(tmp))
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise PrunekitError("ONNX export needs the onnx package: pip install 'prunekit[onnx]'") from None

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(model, (example_inputs,), tmp, input_names=["input"], output_names=["output"],
                              opset_version=17, dynamo=False, dynamic_axes=axes)

    return atomic_write(path, write)
