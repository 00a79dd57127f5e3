"""Datasets by name, with a fixed hold-out validation split: digits, MNIST, Fashion-MNIST, CIFAR, folders, JSON, CSV,
and synthetic segmentation shapes."""

from prunekit.data import csv_format, digits, folder, json_format, shapes, torchvision_sets  # noqa: F401  (registers the datasets)
from prunekit.data.bundle import DataBundle, TensorSplit, batches
from prunekit.data.registry import DATASETS, RawData, cache_dir, list_datasets, load_dataset, register_dataset

__all__ = [
    "DATASETS", "DataBundle", "RawData", "TensorSplit", "batches", "cache_dir",
    "list_datasets", "load_dataset", "register_dataset",
]
