"""Data settings that travel with a checkpoint, so later steps (eval, prune, fine-tune) reload the same splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prunekit.data import DataBundle, list_datasets, load_dataset
from prunekit.errors import PrunekitError
from prunekit.settings import Settings, setting


@dataclass
class DataConfig(Settings):
    """Which dataset, where, and how it is split; recorded in every checkpoint's ``model.json``."""

    dataset: str = setting("digits", "dataset name", choices=list_datasets)
    data_dir: str | None = setting(None, "where the dataset's files are (csv: the CSV file)")
    download: bool = setting(False, "allow downloading the dataset (needs internet)")
    val_size: float = setting(0.1, "hold-out validation split: fraction (<1) or count of training samples")
    split_seed: int = setting(0, "seed of the validation split")
    train_subset: int | None = setting(None, "train on a fixed random subset of this many samples")
    test_subset: int | None = setting(None, "test on a fixed random subset of this many samples")
    augment: bool | None = setting(None, "random 4-pixel crops and horizontal flips while training "
                                         "(default: on for CIFAR only)")
    image_size: int | None = setting(None, "resize every image to N x N pixels (e.g. 32 for CIFAR-sized models)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.val_size < 0 or (self.val_size >= 1 and not float(self.val_size).is_integer()):
            raise PrunekitError(f"--val-size must be a fraction in [0, 1) or a whole count, got {self.val_size}")
        for name in ("train_subset", "test_subset", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PrunekitError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    def load(self) -> DataBundle:
        """Load the dataset with these settings."""
        return load_dataset(
            self.dataset,
            self.data_dir,
            download=self.download,
            val_size=int(self.val_size) if self.val_size >= 1 else float(self.val_size),
            split_seed=self.split_seed,
            train_subset=self.train_subset,
            test_subset=self.test_subset,
            augment=self.augment,
            image_size=self.image_size,
        )

    @classmethod
    def recorded(cls, d: dict[str, Any]) -> "DataConfig":
        """The settings a checkpoint recorded (keys written by other prunekit versions are ignored)."""
        return cls.from_dict(d, source="recorded data settings", ignore_unknown=True)
