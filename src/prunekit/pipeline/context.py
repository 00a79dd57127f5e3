"""Data settings that travel with a checkpoint, so later steps (eval, prune, fine-tune, NetAdapt) reload the same
splits and score them the same way (the task's loss and metric)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunekit.data import DataBundle, list_datasets, load_dataset
from prunekit.data.validate import check_val_size, target_kind
from prunekit.errors import PrunekitError
from prunekit.settings import Settings, setting
from prunekit.training.tasks import Objective, list_tasks, make_objective


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
    task: str = setting("classification", "what the labels are and how predictions are scored: classification "
                                          "(cross-entropy, top-1 accuracy) or segmentation (masks: per-pixel "
                                          "cross-entropy, mean IoU)", choices=list_tasks)
    loss: str | None = setting(None, "your loss instead of the task's: package.module:function(outputs, targets) -> "
                                     "scalar tensor (imported only when named on the command line or with "
                                     "--trust-factory)", metavar="PKG.MODULE:FUNCTION")
    metric: str | None = setting(None, "your metric instead of the task's (higher is better; the 'accuracy' figures "
                                       "hold it): package.module:function(outputs, targets) -> the batch's mean, "
                                       "or a class with update() and compute(); or accuracy, miou",
                                 metavar="PKG.MODULE:FUNCTION")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.data_dir:  # recorded in checkpoints: a relative path would name another folder from elsewhere
            object.__setattr__(self, "data_dir", str(Path(self.data_dir).expanduser().absolute()))
        check_val_size(self.val_size)  # load_dataset's own check, so that the API agrees
        for name in ("train_subset", "test_subset", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PrunekitError(f"--{name.replace('_', '-')} must be at least 1, got {value}")

    def load(self) -> DataBundle:
        """Load the dataset with these settings, its task's loss and metric attached (``data.task``)."""
        data = load_dataset(
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
        data.task = self.objective(data)
        return data

    def objective(self, data: DataBundle) -> Objective:
        """The task's loss and metric for ``data`` (refused when the task's targets are not the data's)."""
        task = make_objective(self.task, self.loss, self.metric, data.num_classes)
        kind = target_kind(data.train)
        if kind is not None and kind != task.targets:
            what = {"masks": "masks (a label per pixel)", "labels": "labels (one per sample)"}
            raise PrunekitError(f"dataset {data.name} has {what[kind]} but task {self.task} expects {task.targets}: "
                                f"pass --task {'segmentation' if kind == 'masks' else 'classification'}")
        return task

    @classmethod
    def recorded(cls, d: dict[str, Any] | None, source: str = "recorded data settings") -> "DataConfig":
        """The settings a checkpoint recorded (keys written by other prunekit versions are ignored);
        ``source`` names the file in error messages."""
        return cls.from_dict(d or {}, source=source, ignore_unknown=True)
