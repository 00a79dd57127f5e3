"""Shared fixtures: an isolated prunekit cache, tiny datasets written to disk."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own PRUNEKIT_CACHE, so nothing depends on (or pollutes) ~/.cache."""
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)


def file_hashes(folder) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256): to assert that a command left a folder as it was."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_json_dataset(folder, n_train=40, n_test=20, shape=(1, 6, 6), classes=3, seed=0):
    """A small dataset in the JSON format: class k has bright pixels in row-band k."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def make(n):
        labels = rng.integers(0, classes, n)
        data = rng.integers(0, 60, (n, *shape))
        for i, k in enumerate(labels):
            data[i, :, k * shape[1] // classes : (k + 1) * shape[1] // classes, :] += 180
        return data.reshape(n, -1).tolist(), labels.tolist()

    d, l = make(n_train)
    (folder / "train.json").write_text(json.dumps({"data": d, "label": l, "shape": list(shape)}))
    d, l = make(n_test)
    (folder / "test.json").write_text(json.dumps({"data": d, "label": l}))
    return folder


def write_idx_dataset(folder, n_train=30, n_test=10, size=28, gz=True):
    """The four MNIST-style IDX files (optionally gzipped) with random content."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)

    def images(n):
        return struct.pack(">IIII", 2051, n, size, size) + rng.integers(0, 256, (n, size, size), dtype=np.uint8).tobytes()

    def labels(n):
        return struct.pack(">II", 2049, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()

    files = {
        "train-images-idx3-ubyte": images(n_train), "train-labels-idx1-ubyte": labels(n_train),
        "t10k-images-idx3-ubyte": images(n_test), "t10k-labels-idx1-ubyte": labels(n_test),
    }
    for name, blob in files.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(blob)
        else:
            (folder / name).write_bytes(blob)
    return folder


@pytest.fixture
def json_dataset(tmp_path):
    """Path of a small JSON-format dataset folder."""
    return write_json_dataset(tmp_path / "jsondata")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits with prunekit's default splits."""
    from prunekit.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def lenet(digits):
    """A LeNet trained 5 epochs on digits (seed 0): the NetAdapt tests' starting network."""
    import prunekit
    from prunekit.training import TrainConfig, seed_everything, train

    seed_everything(0)
    model = prunekit.create_model("lenet", 10, 1, 8)
    train(model, digits.train, TrainConfig(epochs=5), progress=False)
    return model.eval()


@pytest.fixture(scope="session")
def small():
    """A narrow resnet20 (BatchNorm everywhere) on a subset of digits, trained one epoch: (model, data)."""
    import prunekit
    from prunekit.data import load_dataset
    from prunekit.training import TrainConfig, seed_everything, train

    data = load_dataset("digits", train_subset=300)
    seed_everything(0)
    model = prunekit.create_model("resnet20", 10, 1, 8, width=4)
    train(model, data.train, TrainConfig(epochs=1), progress=False)
    return model.eval(), data
