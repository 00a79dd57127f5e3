"""Data settings that travel with a checkpoint, so later steps (eval, prune, fine-tune) reload the same splits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from prunekit.data import DataBundle, load_dataset


@dataclass
class DataConfig:
    """Which dataset, where, and how it is split; recorded in every checkpoint's ``model.json``."""

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    val_size: float = 0.1
    split_seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool | None = None
    image_size: int | None = None

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataConfig":
        """Build from a dict, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
