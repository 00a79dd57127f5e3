"""Dataset loaders, the hold-out split and batching, on small files the tests create."""

import json

import pytest
import torch

from prunekit.data import TensorSplit, batches, list_datasets, load_dataset
from prunekit.data.bundle import holdout_split
from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.pipeline.context import DataConfig
from tests.conftest import write_idx_dataset, write_json_dataset


def test_registry_has_the_datasets():
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "json", "csv"} <= set(list_datasets())


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match="digits"):
        load_dataset("no_such_data")


def test_digits_splits_are_disjoint_fixed_and_sized():
    a = load_dataset("digits", val_size=0.1)
    b = load_dataset("digits", val_size=0.1)
    assert (len(a.train), len(a.val), len(a.test)) == (1293, 144, 360)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    # validation rows come from the training data, never from test
    val_rows = {tuple(r.flatten().tolist()) for r in a.val.x}
    train_rows = {tuple(r.flatten().tolist()) for r in a.train.x}
    assert len(val_rows & train_rows) < 5  # digits has a few duplicate images, nothing more
    other = load_dataset("digits", val_size=50, split_seed=1)
    assert len(other.val) == 50 and not torch.equal(other.val.x, a.val.x[:50])


@pytest.mark.parametrize("val_size", [1.5, -1, float("nan")])
def test_load_dataset_refuses_the_val_size_the_cli_refuses(val_size):
    message = f"^--val-size must be a fraction in \\[0, 1\\) or a whole count, got {val_size}$"
    with pytest.raises(PrunekitError, match=message):
        load_dataset("digits", val_size=val_size)
    with pytest.raises(PrunekitError, match="^--val-size must be"):
        DataConfig(val_size=val_size)


def test_holdout_split_rejects_taking_everything():
    split = TensorSplit(torch.zeros(10, 1, 2, 2), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError):
        holdout_split(split, 10, 0)


def test_subsets_are_fixed():
    a = load_dataset("digits", train_subset=100, test_subset=50)
    b = load_dataset("digits", train_subset=100, test_subset=50)
    assert len(a.train) == 100 and len(a.test) == 50
    assert torch.equal(a.train.x, b.train.x)


def test_batches_cover_every_sample_once():
    split = TensorSplit(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    seen = torch.cat([y for _, y in batches(split, 3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))


def test_crop_flip_augmentation_keeps_shape():
    split = TensorSplit(torch.randn(8, 3, 32, 32), torch.zeros(8, dtype=torch.long))
    x, _ = next(batches(split, 8, augment="crop_flip", generator=torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 32, 32) and not torch.equal(x, split.x)


def test_json_dataset_loads(json_dataset):
    data = load_dataset("json", json_dataset, val_size=0.25)
    assert data.input_shape == (1, 6, 6) and data.num_classes == 3
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 20)
    assert abs(float(data.train.x.mean())) < 0.2  # standardised


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("shape"), "missing field"),
    (lambda d: d.update(label=d["label"][:-1]), "labels"),
    (lambda d: d.update(shape=[1, 5, 5]), "C\\*H\\*W"),
    (lambda d: d.update(shape="1x6x6"), "shape"),
    (lambda d: d["data"][0].__setitem__(0, 999), "0-255"),
])
def test_malformed_json_dataset_is_one_clear_error(tmp_path, mutate, message):
    folder = write_json_dataset(tmp_path / "bad")
    doc = json.loads((folder / "train.json").read_text())
    mutate(doc)
    (folder / "train.json").write_text(json.dumps(doc))
    with pytest.raises(PrunekitError, match=message):
        load_dataset("json", folder)


def test_json_dataset_not_json(tmp_path):
    folder = write_json_dataset(tmp_path / "bad")
    (folder / "test.json").write_text("{not json")
    with pytest.raises(PrunekitError, match="not valid JSON"):
        load_dataset("json", folder)


def test_json_dataset_missing_folder(tmp_path):
    with pytest.raises(PrunekitError, match="does not exist"):
        load_dataset("json", tmp_path / "nowhere")


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    for split, n in (("train", 6), ("val", 2)):
        for k, colour in enumerate(((255, 0, 0), (0, 0, 255))):
            d = tmp_path / "imgs" / split / f"class{k}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20 + i, 16), colour).save(d / f"{i}.png")
    data = load_dataset("folder", tmp_path / "imgs", val_size=2)
    assert data.num_classes == 2 and data.input_shape == (3, 32, 32)
    assert (len(data.train), len(data.val), len(data.test)) == (10, 2, 4)
    x, y = next(batches(data.train, 4))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.long
    (tmp_path / "imgs" / "train" / "class0" / "loop").symlink_to("..")  # class1's images again, labelled class0
    with pytest.raises(PrunekitError, match="reached through a link; each image must be listed once"):
        load_dataset("folder", tmp_path / "imgs", val_size=2)


def test_image_folder_needs_train_and_val(tmp_path):
    (tmp_path / "imgs" / "train").mkdir(parents=True)
    with pytest.raises(PrunekitError, match="train/ and val/"):
        load_dataset("folder", tmp_path / "imgs")


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path, gz):
    src = write_idx_dataset(tmp_path / "fm", gz=gz)
    data = load_dataset("fashion-mnist", src, val_size=5)
    assert data.input_shape == (1, 28, 28)
    assert (len(data.train), len(data.val), len(data.test)) == (25, 5, 10)


def test_fashion_mnist_found_in_debian_location(tmp_path, monkeypatch):
    from prunekit.data import torchvision_sets

    monkeypatch.setattr(torchvision_sets, "DEBIAN_FASHION_MNIST", write_idx_dataset(tmp_path / "debian"))
    assert len(load_dataset("fashion-mnist", val_size=5).test) == 10


def test_missing_dataset_says_where_files_go(tmp_path, monkeypatch):
    from prunekit.data import torchvision_sets

    monkeypatch.setattr(torchvision_sets, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(PrunekitError, match="--data-dir.*dataset-fashion-mnist.*--download"):
        load_dataset("fashion-mnist", tmp_path / "empty")
    with pytest.raises(PrunekitError, match="--download"):
        load_dataset("cifar10", tmp_path / "empty")
    with pytest.raises(PrunekitError, match="--download"):
        load_dataset("mnist", tmp_path / "empty")


def test_image_folder_refuses_a_corrupt_image_at_load(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for k in range(2):
            d = tmp_path / "imgs" / split / f"class{k}"
            d.mkdir(parents=True)
            Image.new("RGB", (8, 8), (k * 255, 0, 0)).save(d / "0.png")
    bad = tmp_path / "imgs" / "train" / "class1" / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(PrunekitError, match=r"bad\.png is not an image.*fix or remove that file"):
        load_dataset("folder", tmp_path / "imgs")


def test_a_relative_data_dir_is_recorded_as_the_folder_it_named(tmp_path, monkeypatch):
    """A checkpoint trained with --data-dir d from one folder is evaluated on the same data from any other."""
    from prunekit.cli.main import main

    write_json_dataset(tmp_path / "work" / "d", shape=(1, 8, 8))
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "--model", "lenet", "--dataset", "json", "--data-dir", "d", "--val-size", "5",
                 "--epochs", "0.2", "--out", "ck", "--quiet"]) == 0
    recorded = json.loads((tmp_path / "work" / "ck" / "model.json").read_text())["meta"]["data"]["data_dir"]
    assert recorded == str(tmp_path / "work" / "d")
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--checkpoint", "work/ck"]) == 0
