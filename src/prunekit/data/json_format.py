"""The JSON format users already have: ``train.json`` with ``data``, ``label``, ``shape``; ``test.json`` with ``data``, ``label``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from prunekit.data.bundle import TensorSplit, normalize_images
from prunekit.data.registry import RawData, register_dataset
from prunekit.data.validate import check_classes_present, check_finite, check_labels
from prunekit.errors import PrunekitError


def _read(path: Path, need_shape: bool) -> tuple[list, list, list | None]:
    if not path.is_file():
        raise PrunekitError(f"JSON dataset file {path} is missing")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PrunekitError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise PrunekitError(f"{path}: expected an object with 'data' and 'label'")
    keys = ("data", "label", "shape") if need_shape else ("data", "label")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise PrunekitError(f"{path}: missing field(s) {', '.join(missing)} (expected {', '.join(keys)})")
    return doc["data"], doc["label"], doc.get("shape")


def _tensor(path: Path, data: list, labels: list, shape: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    if len(data) != len(labels):
        raise PrunekitError(f"{path}: {len(data)} rows of data but {len(labels)} labels")
    if not data:
        raise PrunekitError(f"{path}: no samples")
    odd = next((i for i, v in enumerate(labels) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if odd is not None:
        raise PrunekitError(f"{path}: label {odd} is {labels[odd]!r}; labels must be class indices 0 to N-1 "
                            "(map names to numbers first)")
    size = shape[0] * shape[1] * shape[2]
    bad = next((i for i, row in enumerate(data) if not isinstance(row, list) or len(row) != size), None)
    if bad is not None:
        raise PrunekitError(f"{path}: row {bad} does not hold C*H*W = {size} values for shape {shape}")
    try:
        x = torch.tensor(data, dtype=torch.float32).view(len(data), *shape)
        y = torch.tensor(labels)
    except (TypeError, ValueError, RuntimeError) as err:
        raise PrunekitError(f"{path}: data must be numbers 0-255 and labels integers ({err})") from None
    check_finite(x, str(path))  # before normalising: one NaN would spread to every sample through the mean
    if x.min() < 0 or x.max() > 255:
        raise PrunekitError(f"{path}: pixel values must be in 0-255")
    check_labels(y, None, str(path))  # 2.5 is refused, not truncated to 2
    return x, y.long()


@register_dataset("json")
def json_dataset(data_dir: Path | None = None, download: bool = False) -> RawData:
    """A folder with ``train.json`` (``data``: N rows of C*H*W pixels 0-255, ``label``: N ints, ``shape``: [C, H, W]) and ``test.json``."""
    if data_dir is None:
        raise PrunekitError("the json dataset needs --data-dir DIR holding train.json and test.json")
    if not data_dir.is_dir():
        raise PrunekitError(f"JSON dataset folder {data_dir} does not exist")
    data, labels, shape = _read(data_dir / "train.json", need_shape=True)
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise PrunekitError(f"{data_dir / 'train.json'}: 'shape' must be [C, H, W] positive integers, got {shape!r}")
    xtr, ytr = _tensor(data_dir / "train.json", data, labels, shape)
    tdata, tlabels, _ = _read(data_dir / "test.json", need_shape=False)
    xte, yte = _tensor(data_dir / "test.json", tdata, tlabels, shape)
    (xtr, xte), mean, std = normalize_images(xtr, xte)
    num_classes = check_classes_present(ytr, str(data_dir / "train.json"))
    # a class only test.json has was never trained on: most often a mislabelled row (15 in a 10-class set)
    check_labels(yte, num_classes, f"{data_dir / 'test.json'} (train.json has classes 0-{num_classes - 1})")
    return RawData(
        train=TensorSplit(xtr, ytr),
        test=TensorSplit(xte, yte),
        num_classes=num_classes,
        in_channels=shape[0],
        input_size=(shape[1], shape[2]),
        info={"source": str(data_dir), "mean": mean, "std": std, "classes_from_labels": True,
              "files": {"train": str(data_dir / "train.json"), "test": str(data_dir / "test.json")}},
    )
