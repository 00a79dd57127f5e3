"""Bad data refused before any work: checks every dataset passes at load time, and the fit of data to a model.

``load_dataset`` runs :func:`validate_raw` on every loader's output (finite values, integer labels
in range, one per sample or one per pixel for segmentation masks, one shape for every sample, no
empty split) and :func:`check_splits` on the final splits; :func:`check_val_size` checks the hold-out size first.
The checks are vectorised (60k MNIST images take well under a second). Streamed splits (image
folders) are decoded from image files, so their pixels are finite by construction: only their
first sample's shape and their label list are checked here (the folder loader checks every file is
a readable image, ``prunekit.data.folder.check_image_files``).

:func:`check_fits` is the pipeline's check that data suits a checkpoint (channels, size, classes)
before any training, pruning or evaluation starts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch

from prunekit.data.bundle import DataBundle, Split, TensorSplit
from prunekit.errors import PrunekitError

if TYPE_CHECKING:
    from prunekit.data.registry import RawData

CHUNK = 4096
"""Samples checked at once (bounds the temporary boolean mask's memory)."""


def check_finite(x: torch.Tensor, where: str) -> None:
    """Refuse a NaN or infinite value, naming the first sample (row) that holds one."""
    if not torch.is_floating_point(x):
        return
    for start in range(0, len(x), CHUNK):
        bad = ~torch.isfinite(x[start:start + CHUNK]).reshape(min(CHUNK, len(x) - start), -1).all(1)
        if bool(bad.any()):
            index = start + int(bad.nonzero()[0])
            raise PrunekitError(f"{where}: sample {index} holds a NaN or infinite value; fix or remove that sample")


def _first(bad: torch.Tensor, y: torch.Tensor, start: int) -> tuple[str, float]:
    """Where the first True of ``bad`` is ('sample 3', or 'pixel (row, col) of sample 3' in masks; sample
    numbers offset by ``start``) and its label."""
    index = tuple(int(i) for i in bad.nonzero()[0])
    sample = start + index[0]
    where = f"sample {sample}" if len(index) == 1 else f"pixel {index[1:]} of sample {sample}"
    return where, float(y[index])


def check_labels(y: torch.Tensor, num_classes: int | None, where: str, size: Sequence[int] | None = None) -> None:
    """Refuse labels that are not integer class indices in [0, num_classes) (range unchecked when None): one per
    sample [N], or one per pixel [N, H, W] (segmentation masks; of ``size`` (H, W) when given)."""
    if y.dim() not in (1, 3):
        raise PrunekitError(f"{where}: labels must be one integer per sample [N] or per pixel [N, H, W] "
                            f"(segmentation masks), got shape {list(y.shape)}")
    if y.dim() == 3 and size is not None and tuple(y.shape[1:]) != tuple(size):
        raise PrunekitError(f"{where}: masks are {y.shape[1]}x{y.shape[2]} but the images {size[0]}x{size[1]}; "
                            "a mask has one label per pixel of its image")
    if len(y) == 0:
        return
    for start in range(0, len(y), CHUNK):
        _check_label_chunk(y[start:start + CHUNK], start, num_classes, where)


def _check_label_chunk(y: torch.Tensor, start: int, num_classes: int | None, where: str) -> None:
    def refuse(bad: torch.Tensor, why: str) -> None:
        at, value = _first(bad, y, start)
        label = str(int(value)) if value.is_integer() else f"{value:g}"
        raise PrunekitError(f"{where}: label {label} of {at} {why}")

    if torch.is_floating_point(y):
        bad = ~torch.isfinite(y) | (y != y.round())
        if bool(bad.any()):
            refuse(bad, "is not an integer; labels are class indices 0, 1, 2, ...")
    elif y.dtype == torch.bool or y.is_complex():
        raise PrunekitError(f"{where}: labels must be integers, got {y.dtype}")
    if bool((y < 0).any()):
        refuse(y < 0, "is negative; labels are class indices 0, 1, 2, ...")
    if num_classes is not None and bool((y >= num_classes).any()):
        refuse(y >= num_classes, f"is out of range for {num_classes} classes (valid: 0-{num_classes - 1})")


def target_kind(split: Split) -> str | None:
    """``labels`` (one per sample) or ``masks`` (one per pixel) (a streamed split: by its first sample); None
    when the split is empty."""
    if isinstance(split, TensorSplit):
        return "masks" if split.y.dim() == 3 else "labels"
    if _labels_of(split) is not None:
        return "labels"
    if len(split) == 0:  # type: ignore[arg-type]
        return None
    y = split[0][1]
    return "masks" if torch.is_tensor(y) and y.dim() == 2 else "labels"


def check_classes_present(y: torch.Tensor, where: str) -> int:
    """For labels that define the class count (JSON, CSV): refuse a class index with no sample below the
    largest one (15 in a 0-9 set, 1-based labels); returns the class count (largest label + 1)."""
    count = int(y.max()) + 1
    present = set(torch.unique(y.long()).tolist())  # (not a count per class: a label of 10**11 needs no memory)
    if len(present) < count:
        missing: list[int] = []
        candidate = 0
        while len(missing) < 6 and candidate < count:  # the first few absent classes: at most len(present) + 6 steps
            if candidate not in present:
                missing.append(candidate)
            candidate += 1
        top = int((y == count - 1).nonzero()[0])
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise PrunekitError(f"{where}: label {count - 1} of sample {top} implies {count} classes but class(es) "
                            f"{shown} have no sample; labels must be 0 to N-1 with every class present")
    return count


def check_shapes(x: torch.Tensor, y: torch.Tensor, shape: Sequence[int], where: str) -> None:
    """Refuse samples whose shape is not ``shape`` (C, H, W) and a label count that differs from the sample count."""
    if tuple(x.shape[1:]) != tuple(shape):
        raise PrunekitError(f"{where}: samples have shape {list(x.shape[1:])}, expected {list(shape)} (C, H, W)")
    if len(x) != len(y):
        raise PrunekitError(f"{where}: {len(x)} samples but {len(y)} labels")
    if y.dim() == 3 and tuple(y.shape[1:]) != tuple(x.shape[2:]):
        raise PrunekitError(f"{where}: masks are {y.shape[1]}x{y.shape[2]} but the images {x.shape[2]}x{x.shape[3]}; "
                            "a mask has one label per pixel of its image")


def _labels_of(split: Split) -> torch.Tensor | None:
    """A streamed split's labels when it lists them (torchvision's ImageFolder does), else None."""
    targets = getattr(split, "targets", None)
    if targets is None:
        return None
    return targets if torch.is_tensor(targets) else torch.as_tensor(list(targets))


def check_split(split: Split, shape: Sequence[int], num_classes: int, where: str) -> None:
    """Every check on one split: not empty, one shape, finite values, labels (or mask pixels) in range."""
    if len(split) == 0:  # type: ignore[arg-type]
        raise PrunekitError(f"{where} is empty: it has no samples")
    if isinstance(split, TensorSplit):
        check_shapes(split.x, split.y, shape, where)
        check_finite(split.x, where)
        check_labels(split.y, num_classes, where)
        return
    first = split[0][0]
    if tuple(first.shape) != tuple(shape):
        raise PrunekitError(f"{where}: sample 0 has shape {list(first.shape)}, expected {list(shape)} (C, H, W)")
    labels = _labels_of(split)
    if labels is not None:
        check_labels(labels, num_classes, where)
    elif torch.is_tensor(split[0][1]) and split[0][1].dim() == 2:  # a streamed mask: its first one is checked
        check_labels(split[0][1].unsqueeze(0), num_classes, where, size=shape[1:])


def _where(name: str, raw: "RawData", split: str) -> str:
    info = raw.info or {}
    file = (info.get("files") or {}).get(split)
    return f"dataset {name}: {file}" if file else f"dataset {name} ({info.get('source', 'built in')}), {split} split"


def validate_raw(raw: "RawData", name: str) -> None:
    """Check a loader's output before any split is carved from it (sample indices are the loader's own)."""
    if raw.num_classes < 1 or raw.in_channels < 1 or min(raw.input_size) < 1:
        raise PrunekitError(f"dataset {name}: {raw.num_classes} classes of {raw.in_channels}x"
                            f"{raw.input_size[0]}x{raw.input_size[1]} images is not a usable dataset")
    shape = (raw.in_channels, *raw.input_size)
    for split_name, split in (("train", raw.train), ("test", raw.test), ("val", raw.val)):
        if split is not None:
            check_split(split, shape, raw.num_classes, _where(name, raw, split_name))


def check_val_size(val_size: float | int) -> None:
    """Refuse a hold-out size that is neither a fraction in [0, 1) nor a whole count (``load_dataset`` and
    ``DataConfig``, so the API, the CLI and YAML files agree), before any data is read."""
    try:
        value = float(val_size)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(val_size, bool) or not math.isfinite(value) or value < 0 or (value >= 1 and not value.is_integer()):
        raise PrunekitError(f"--val-size must be a fraction in [0, 1) or a whole count, got {val_size}")


def check_splits(data: DataBundle, val_size: float | int) -> None:
    """Refuse a final train or test split left empty by the subset options, or an empty validation split that was asked for."""
    if len(data.train) == 0:  # type: ignore[arg-type]
        raise PrunekitError(f"dataset {data.name}: the training split is empty; raise --train-subset")
    if len(data.test) == 0:  # type: ignore[arg-type]
        raise PrunekitError(f"dataset {data.name}: the test split is empty; raise --test-subset")
    if len(data.val) == 0 and val_size:  # type: ignore[arg-type]
        n = len(data.train)  # type: ignore[arg-type]
        fix = (f"pass a count, e.g. --val-size {max(1, n // 10)}" if n >= 2 else
               "give more training samples (a validation split needs one besides those trained on), or --val-size 0")
        raise PrunekitError(f"dataset {data.name}: --val-size {val_size} of its {n} training samples leaves an "
                            f"empty validation split; {fix}")


def check_fits(data: DataBundle, input_shape: tuple, num_classes: int | None, source: str) -> None:
    """Refuse data that does not suit a model taking ``input_shape`` (C, H, W) with ``num_classes`` outputs.

    ``source`` names the model (e.g. the checkpoint folder) in the one-line message. A dataset whose
    class count comes from its labels (JSON, CSV) may have fewer classes than the model's outputs
    (a test file may lack the last class); a dataset with a fixed class count must match exactly. For
    segmentation data (masks) the classes are the model's per-pixel output channels.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:  # a batch shape (N, C, H, W)
        shape = shape[1:]
    if len(shape) != 3:
        if tuple(data.input_shape) != shape:
            raise PrunekitError(f"{source} takes inputs of shape {list(shape)} but dataset {data.name} has "
                                f"{list(data.input_shape)}; use the data it was trained on (--dataset, --data-dir)")
    else:
        _check_image_fit(data, shape, source)
    if num_classes is None:
        return
    inferred = bool(data.info.get("classes_from_labels"))
    if data.num_classes > num_classes or (not inferred and data.num_classes != num_classes):
        raise PrunekitError(f"{source} has {num_classes} class outputs but dataset {data.name} has "
                            f"{data.num_classes} classes; use the data it was trained on (--dataset, --data-dir)")


def _check_image_fit(data: DataBundle, shape: tuple[int, int, int], source: str) -> None:
    channels, height, width = shape
    if data.in_channels != channels:
        raise PrunekitError(f"{source} takes {channels}-channel images but dataset {data.name} has "
                            f"{data.in_channels}-channel images; use the data it was trained on (--dataset, --data-dir)")
    if tuple(data.input_size) != (height, width):
        h, w = data.input_size
        fix = f"pass --image-size {height}" if height == width else "use data of that size (--dataset, --data-dir)"
        raise PrunekitError(f"{source} takes {height}x{width} images but dataset {data.name} has {h}x{w}; {fix}")
