"""The dataset registry and ``load_dataset``."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from prunekit.data.bundle import DataBundle, Split, holdout_split, resize_split, take
from prunekit.data.validate import check_splits, check_val_size, validate_raw
from prunekit.errors import PrunekitError
from prunekit.registry import Registry


@dataclass
class RawData:
    """What a dataset loader returns: train and test splits before the validation split is carved out.

    ``val``: a validation split the data set itself names (e.g. a CSV's split column); when None,
    ``load_dataset`` carves one from ``train``. ``info`` may hold ``files`` ({split: file}) so that
    errors name the file at fault, and ``classes_from_labels`` when ``num_classes`` was inferred
    from the labels rather than fixed by the data set.
    """

    train: Split
    test: Split
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    augment: str = "none"
    info: dict | None = None
    val: Split | None = None


DATASETS: Registry[Callable[..., RawData]] = Registry("dataset")
"""Dataset loaders: each takes ``data_dir`` (Path or None) and ``download`` (bool) and returns RawData.
A loader that also takes ``image_size`` is given it, and resizes while it reads."""

register_dataset = DATASETS.register


def cache_dir() -> Path:
    """Where prunekit keeps decompressed datasets and other caches (``$PRUNEKIT_CACHE``, else ~/.cache/prunekit)."""
    root = os.environ.get("PRUNEKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "prunekit")
    return Path(root)


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return DATASETS.names()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    val_size: float | int = 0.1,
    split_seed: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
    augment: bool | None = None,
    image_size: int | None = None,
) -> DataBundle:
    """Load a dataset by name with a hold-out validation split carved from its training data.

    ``val_size``: fraction (0-1) or count of training samples held out (fixed ``split_seed``).
    ``train_subset`` / ``test_subset`` keep a fixed random subset (quick runs). ``augment``
    overrides the dataset's default augmentation (on for CIFAR). ``image_size`` resizes every
    image to that many pixels square (e.g. 32 for 28x28 Fashion-MNIST into CIFAR-sized models).
    Nothing is downloaded unless ``download`` is true. A data set that names its own validation
    split (a CSV split column) keeps it and ``val_size`` is unused. Bad data (NaN or infinite
    values, labels that are not class indices, mixed shapes, empty splits) is refused here, as
    one PrunekitError naming the file and the first bad sample (see ``prunekit.data.validate``).
    """
    check_val_size(val_size)
    if image_size is not None and int(image_size) < 1:
        raise PrunekitError(f"--image-size must be a positive number of pixels, got {image_size}")
    loader = DATASETS.get(name)
    sized = {"image_size": int(image_size)} if image_size and _takes(loader, "image_size") else {}
    raw = loader(data_dir=Path(data_dir).expanduser() if data_dir else None, download=download, **sized)
    if image_size and tuple(raw.input_size) != (image_size, image_size):
        size = (int(image_size), int(image_size))
        raw = replace(raw, train=resize_split(raw.train, size), test=resize_split(raw.test, size), input_size=size,
                      val=None if raw.val is None else resize_split(raw.val, size))
    validate_raw(raw, name)
    train, val = (raw.train, raw.val) if raw.val is not None else _holdout(raw.train, val_size, split_seed)
    train = take(train, train_subset, split_seed)
    test = take(raw.test, test_subset, split_seed)
    aug = raw.augment if augment is None else ("crop_flip" if augment else "none")
    data = DataBundle(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=raw.num_classes,
        in_channels=raw.in_channels,
        input_size=raw.input_size,
        augment=aug,
        info=dict(raw.info or {}, data_dir=str(data_dir) if data_dir else None, val_size=val_size, split_seed=split_seed,
                  image_size=image_size),
    )
    check_splits(data, val_size if raw.val is None else 0)
    return data


def _takes(fn: Callable, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _holdout(train: Split, val_size: float | int, seed: int) -> tuple[Split, Split]:
    try:
        return holdout_split(train, val_size, seed)
    except ValueError as err:
        raise PrunekitError(f"--val-size: {err}") from None
