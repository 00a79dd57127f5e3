"""The dataset registry and ``load_dataset``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prunekit.data.bundle import DataBundle, Split, holdout_split, resize_split, take
from prunekit.registry import Registry


@dataclass
class RawData:
    """What a dataset loader returns: train and test splits before the validation split is carved out."""

    train: Split
    test: Split
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    augment: str = "none"
    info: dict | None = None


DATASETS: Registry[Callable[..., RawData]] = Registry("dataset")
"""Dataset loaders: each takes ``data_dir`` (Path or None) and ``download`` (bool) and returns RawData."""

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
    Nothing is downloaded unless ``download`` is true.
    """
    loader = DATASETS.get(name)
    raw = loader(data_dir=Path(data_dir).expanduser() if data_dir else None, download=download)
    if image_size and tuple(raw.input_size) != (image_size, image_size):
        size = (int(image_size), int(image_size))
        raw = RawData(resize_split(raw.train, size), resize_split(raw.test, size), raw.num_classes, raw.in_channels,
                      size, raw.augment, raw.info)
    train, val = holdout_split(raw.train, val_size, split_seed)
    train = take(train, train_subset, split_seed)
    test = take(raw.test, test_subset, split_seed)
    aug = raw.augment if augment is None else ("crop_flip" if augment else "none")
    return DataBundle(
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
