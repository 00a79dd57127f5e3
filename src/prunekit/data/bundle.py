"""The data a model is trained, scored and tested on: train / hold-out validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import torch
from torch.utils.data import DataLoader, Dataset, Subset


@dataclass
class TensorSplit:
    """A split held in memory: normalised float images ``x`` [N, C, H, W] and integer labels ``y`` [N]
    (or segmentation masks [N, H, W]: a class index per pixel)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, indices: torch.Tensor) -> "TensorSplit":
        """The rows at ``indices``."""
        return TensorSplit(self.x[indices], self.y[indices])


Split = Union[TensorSplit, Dataset]


@dataclass
class DataBundle:
    """A dataset ready for training: three splits plus the shape facts a model needs.

    ``val`` is carved from the training data with a fixed seed: NetAdapt scores candidates on it,
    never on ``test``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    augment: str = "none"
    info: dict = field(default_factory=dict)
    task: Any = None
    """The task's loss and metric on this data (a ``prunekit.training.tasks.Objective``, set by the pipeline's
    data settings); None: classification."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        return (self.in_channels, *self.input_size)

    def example_inputs(self, batch_size: int = 1) -> torch.Tensor:
        """A zero batch of the data's shape, for tracing and resource counting."""
        return torch.zeros(batch_size, *self.input_shape)

    def describe(self) -> str:
        """One line: name, split sizes, shape, classes."""
        return (
            f"{self.name}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)}, "
            f"shape {list(self.input_shape)}, {self.num_classes} classes"
        )


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    augment: str = "none",
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One pass over ``split`` in batches; in-memory splits are sliced directly (much faster than a DataLoader)."""
    if isinstance(split, TensorSplit):
        n = len(split)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = split.x[idx]
            if augment != "none":
                x = apply_augment(x, augment, generator)
            yield x, split.y[idx]
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=num_workers)
    for x, y in loader:
        if augment != "none":
            x = apply_augment(x, augment, generator)
        yield x, y


def apply_augment(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """Batch augmentation on tensors. ``crop_flip``: random 4-px-padded crop and horizontal flip (CIFAR)."""
    if kind != "crop_flip":
        raise ValueError(f"unknown augmentation {kind!r}")
    n, _, h, w = x.shape
    pad = 4
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def holdout_split(train: Split, val_size: float | int, seed: int) -> tuple[Split, Split]:
    """Carve a validation split out of ``train`` with a fixed seed.

    ``val_size`` is a fraction in (0, 1) or a number of samples; 0 gives an empty validation split.
    """
    n = len(train)
    count = int(round(val_size * n)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not 0 <= count < n:
        raise ValueError(f"val_size {val_size} leaves no training data (train has {n} samples)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:count].sort().values, perm[count:].sort().values
    if isinstance(train, TensorSplit):
        return train.subset(train_idx), train.subset(val_idx)
    return Subset(train, train_idx.tolist()), Subset(train, val_idx.tolist())


def take(split: Split, count: int | None, seed: int = 0) -> Split:
    """A fixed random subset of ``count`` samples (all of them when ``count`` is None or larger)."""
    if count is None or count >= len(split):
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    if isinstance(split, TensorSplit):
        return split.subset(idx)
    return Subset(split, idx.tolist())


def normalize_images(train_x: torch.Tensor, *others: torch.Tensor) -> tuple[list[torch.Tensor], list[float], list[float]]:
    """Scale uint8 (0-255) images to float and standardise per channel with the training mean and std."""
    train_f = train_x.float().div_(255)
    mean = train_f.mean(dim=(0, 2, 3))
    std = train_f.std(dim=(0, 2, 3)).clamp_min(1e-6)
    out = [train_f.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])]
    for x in others:
        out.append(x.float().div_(255).sub_(mean[None, :, None, None]).div_(std[None, :, None, None]))
    return out, mean.tolist(), std.tolist()


class _ResizedDataset(Dataset):
    """A streamed split whose images are resized on the fly."""

    def __init__(self, data: Dataset, size: tuple[int, int]) -> None:
        self.data, self.size = data, size

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        x, y = self.data[i]
        return _resize(x.unsqueeze(0), self.size)[0], y


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_split(split: Split, size: tuple[int, int]) -> Split:
    """The split with every image resized to ``size`` (H, W) (bilinear; in memory at once, streamed lazily)."""
    if isinstance(split, TensorSplit):
        chunks = [_resize(split.x[i:i + 4096], size) for i in range(0, len(split), 4096)]
        return TensorSplit(torch.cat(chunks) if chunks else split.x, split.y)
    return _ResizedDataset(split, size)

