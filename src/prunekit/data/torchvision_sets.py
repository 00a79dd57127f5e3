"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 through torchvision's classes, held in memory.

Nothing is downloaded unless asked (``--download``). Fashion-MNIST is also found in Debian's
``dataset-fashion-mnist`` package; its files were re-compressed, so they are decompressed into
prunekit's cache instead of being checked against torchvision's md5 list.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import torch

from prunekit.data.bundle import TensorSplit, normalize_images
from prunekit.data.registry import RawData, cache_dir, register_dataset
from prunekit.errors import PrunekitError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _has_idx(folder: Path) -> bool:
    return all((folder / f).exists() or (folder / f"{f}.gz").exists() for f in _IDX_FILES)


def _stage_idx(source: Path, root: Path, cls_name: str) -> Path:
    """Copy (decompressing) the four IDX files from ``source`` into ``root/cls_name/raw`` where torchvision looks."""
    raw = root / cls_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in _IDX_FILES:
        target = raw / f
        if target.exists():
            continue
        tmp = raw / f"{f}.part"
        if (source / f).exists():
            shutil.copyfile(source / f, tmp)
        else:
            with gzip.open(source / f"{f}.gz", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        tmp.replace(target)
    return root


def _mnist_like(cls_name: str, pretty: str, data_dir: Path | None, download: bool, extra: tuple[Path, ...] = ()) -> RawData:
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    root = data_dir or cache_dir() / "datasets"
    candidates = [root / cls_name / "raw", root, *extra]
    found = next((c for c in candidates if c.is_dir() and _has_idx(c)), None)
    ready = all((root / cls_name / "raw" / f).exists() for f in _IDX_FILES)
    if found is not None and not ready:
        root = _stage_idx(found, cache_dir() / "datasets", cls_name)
    elif found is None and not download:
        looked = ", ".join(str(c) for c in candidates)
        hint = " or `apt-get install dataset-fashion-mnist` (Debian)," if cls_name == "FashionMNIST" else ""
        raise PrunekitError(
            f"{pretty} not found (looked in {looked}). Put its four IDX files ({', '.join(f + '.gz' for f in _IDX_FILES)}) "
            f"in a folder and pass --data-dir FOLDER,{hint} or pass --download to fetch it (needs internet)."
        )
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except Exception as err:  # torchvision raises RuntimeError / URLError with long messages
        raise PrunekitError(f"cannot load {pretty} from {root}: {err}") from None
    (xtr, xte), mean, std = normalize_images(train.data.unsqueeze(1), test.data.unsqueeze(1))
    return RawData(
        train=TensorSplit(xtr, train.targets.long()),
        test=TensorSplit(xte, test.targets.long()),
        num_classes=10,
        in_channels=1,
        input_size=(28, 28),
        info={"source": str(root), "mean": mean, "std": std},
    )


@register_dataset("mnist")
def mnist(data_dir: Path | None = None, download: bool = False) -> RawData:
    """MNIST handwritten digits, 28x28 grey, 60k train / 10k test."""
    return _mnist_like("MNIST", "MNIST", data_dir, download)


@register_dataset("fashion-mnist", "fashion_mnist", "fmnist")
def fashion_mnist(data_dir: Path | None = None, download: bool = False) -> RawData:
    """Fashion-MNIST, 28x28 grey, 60k train / 10k test; also found in Debian's dataset-fashion-mnist."""
    return _mnist_like("FashionMNIST", "Fashion-MNIST", data_dir, download, extra=(DEBIAN_FASHION_MNIST,))


def _cifar(cls_name: str, num_classes: int, data_dir: Path | None, download: bool) -> RawData:
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    root = data_dir or cache_dir() / "datasets"
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError:
        raise PrunekitError(
            f"{cls_name} not found in {root}: put the extracted python version "
            f"({cls.base_folder}/ from {cls.filename}) there and pass --data-dir {root}, "
            "or pass --download to fetch it (needs internet)."
        ) from None
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)  # noqa: E731  NHWC -> NCHW
    (xtr, xte), mean, std = normalize_images(to_t(train.data), to_t(test.data))
    return RawData(
        train=TensorSplit(xtr, torch.tensor(train.targets, dtype=torch.long)),
        test=TensorSplit(xte, torch.tensor(test.targets, dtype=torch.long)),
        num_classes=num_classes,
        in_channels=3,
        input_size=(32, 32),
        augment="crop_flip",
        info={"source": str(root), "mean": mean, "std": std},
    )


@register_dataset("cifar10")
def cifar10(data_dir: Path | None = None, download: bool = False) -> RawData:
    """CIFAR-10, 32x32 colour, 50k train / 10k test (random crop + flip augmentation by default)."""
    return _cifar("CIFAR10", 10, data_dir, download)


@register_dataset("cifar100")
def cifar100(data_dir: Path | None = None, download: bool = False) -> RawData:
    """CIFAR-100, 32x32 colour, 50k train / 10k test (random crop + flip augmentation by default)."""
    return _cifar("CIFAR100", 100, data_dir, download)
