"""scikit-learn's bundled 8x8 handwritten digits: always available, the default for demos and tests."""

from __future__ import annotations

from pathlib import Path

import torch

from prunekit.data.bundle import TensorSplit
from prunekit.data.registry import RawData, register_dataset


@register_dataset("digits")
def digits(data_dir: Path | None = None, download: bool = False) -> RawData:
    """1797 8x8 grey images (values 0-16) in 10 classes; a fixed stratified 20 % is the test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(range(len(y)), test_size=0.2, random_state=0, stratify=bunch.target)
    train_idx, test_idx = torch.tensor(sorted(train_idx)), torch.tensor(sorted(test_idx))
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = (x - mean) / std
    return RawData(
        train=TensorSplit(x[train_idx], y[train_idx]),
        test=TensorSplit(x[test_idx], y[test_idx]),
        num_classes=10,
        in_channels=1,
        input_size=(8, 8),
        info={"source": "sklearn.datasets.load_digits"},
    )
