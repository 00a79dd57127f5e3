"""Bad data is refused at load time (issue 13 item 4), and data that does not fit a model is refused by check_fits."""

from __future__ import annotations

import json

import pytest
import torch

from prunekit.data import DATASETS, DataBundle, RawData, TensorSplit, load_dataset
from prunekit.data.validate import check_finite, check_fits, check_labels
from prunekit.errors import PrunekitError
from tests.conftest import write_json_dataset


def _edit(folder, name, change):
    doc = json.loads((folder / name).read_text())
    change(doc)
    (folder / name).write_text(json.dumps(doc))


@pytest.mark.parametrize("name", ["train.json", "test.json"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_pixel_names_the_file_and_sample(tmp_path, name, value):
    folder = write_json_dataset(tmp_path / "d")
    _edit(folder, name, lambda d: d["data"][7].__setitem__(3, "PIXEL"))
    (folder / name).write_text((folder / name).read_text().replace('"PIXEL"', value))  # Python's json reads these
    with pytest.raises(PrunekitError, match=rf"{name}: sample 7 holds a NaN or infinite value"):
        load_dataset("json", folder)


@pytest.mark.parametrize("label,message", [
    (2.5, r"train.json: label 2.5 of sample 4 is not an integer"),
    (-1, r"train.json: label -1 of sample 4 is negative"),
    (15, r"train.json: label 15 of sample 4 implies 16 classes but class\(es\) 3, 4, 5, 6, 7, ... have no sample"),
])
def test_bad_training_labels(tmp_path, label, message):
    folder = write_json_dataset(tmp_path / "d")
    _edit(folder, "train.json", lambda d: d["label"].__setitem__(4, label))
    with pytest.raises(PrunekitError, match=message):
        load_dataset("json", folder)


def test_a_test_label_the_training_data_lacks(tmp_path):
    folder = write_json_dataset(tmp_path / "d")  # 3 classes
    _edit(folder, "test.json", lambda d: d["label"].__setitem__(2, 9))
    with pytest.raises(PrunekitError, match=r"test.json \(train.json has classes 0-2\): label 9 of sample 2 is out of "
                                            r"range for 3 classes"):
        load_dataset("json", folder)


def test_one_based_labels_are_refused(tmp_path):
    folder = write_json_dataset(tmp_path / "d")
    for name in ("train.json", "test.json"):
        _edit(folder, name, lambda d: d.update(label=[v + 1 for v in d["label"]]))
    with pytest.raises(PrunekitError, match=r"class\(es\) 0 have no sample"):
        load_dataset("json", folder)


@pytest.fixture
def loader(monkeypatch):
    """Register a temporary dataset ``fake`` whose RawData the test builds."""
    made = {}

    def fake(data_dir=None, download=False):
        return made["raw"]

    monkeypatch.setitem(DATASETS._items, "fake", fake)
    return made


def _raw(n=20, shape=(1, 4, 4), classes=3, **kw):
    x = torch.randn(n, *shape)
    y = torch.arange(n) % classes
    return RawData(train=TensorSplit(x, y), test=TensorSplit(x[:5].clone(), y[:5].clone()), num_classes=classes,
                   in_channels=shape[0], input_size=shape[1:], **kw)


def test_every_loader_is_checked_centrally(loader):
    raw = _raw()
    raw.test.x[3, 0, 1, 2] = float("nan")
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"dataset fake \(built in\), test split: sample 3 holds a NaN"):
        load_dataset("fake")


def test_labels_out_of_a_declared_class_count(loader):
    raw = _raw()
    raw.train.y[6] = 10  # 15 in a 10-class set: not 16 classes
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"train split: label 10 of sample 6 is out of range for 3 classes \(valid: 0-2\)"):
        load_dataset("fake")


def test_float_labels_are_not_truncated(loader):
    raw = _raw()
    raw.train.y = raw.train.y.float()
    raw.train.y[2] = 1.5
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"label 1.5 of sample 2 is not an integer"):
        load_dataset("fake")


def test_inconsistent_shapes(loader):
    raw = _raw()
    raw.test.x = torch.randn(5, 1, 4, 5)
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"test split: samples have shape \[1, 4, 5\], expected \[1, 4, 4\]"):
        load_dataset("fake")


def test_label_count_differs_from_sample_count(loader):
    raw = _raw()
    raw.train.y = raw.train.y[:-1]
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"20 samples but 19 labels"):
        load_dataset("fake")


def test_empty_splits(loader):
    raw = _raw()
    raw.test = TensorSplit(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))
    loader["raw"] = raw
    with pytest.raises(PrunekitError, match=r"test split is empty"):
        load_dataset("fake")
    loader["raw"] = _raw(n=5)
    with pytest.raises(PrunekitError, match=r"--val-size 0.05 of its 5 training samples leaves an empty validation "
                                            r"split; pass a count, e.g. --val-size 1"):
        load_dataset("fake", val_size=0.05)
    loader["raw"] = _raw(n=1)
    with pytest.raises(PrunekitError, match=r"of its 1 training samples .* give more training samples"):
        load_dataset("fake", val_size=0.5)
    with pytest.raises(PrunekitError, match=r"--val-size: val_size 5 leaves no training data"):
        load_dataset("fake", val_size=5)
    assert len(load_dataset("fake", val_size=0).val) == 0  # asked for none: fine
    with pytest.raises(PrunekitError, match=r"the training split is empty; raise --train-subset"):
        load_dataset("fake", train_subset=0)


def test_image_size_must_be_positive():
    with pytest.raises(PrunekitError, match="--image-size must be a positive"):
        load_dataset("digits", image_size=0)


def test_the_built_in_sets_pass(digits):
    assert digits.num_classes == 10  # loading ran every check


def test_checks_are_vectorised_and_exact_on_a_large_split():
    x = torch.zeros(20000, 1, 8, 8)
    x[17321, 0, 7, 7] = float("inf")
    with pytest.raises(PrunekitError, match="sample 17321 "):
        check_finite(x, "big")
    check_labels(torch.arange(20000) % 10, 10, "big")


def _bundle(num_classes=10, channels=1, size=(8, 8), inferred=False):
    split = TensorSplit(torch.zeros(2, channels, *size), torch.zeros(2, dtype=torch.long))
    info = {"classes_from_labels": True} if inferred else {}
    return DataBundle("mydata", split, split, split, num_classes, channels, size, info=info)


def test_check_fits_accepts_matching_data():
    check_fits(_bundle(), (1, 8, 8), 10, "runs/lenet")
    check_fits(_bundle(), (2, 1, 8, 8), 10, "runs/lenet")  # a batch shape
    check_fits(_bundle(num_classes=7, inferred=True), (1, 8, 8), 10, "runs/lenet")  # labels 0-6 of a 10-class model
    check_fits(_bundle(), (1, 8, 8), None, "runs/lenet")


@pytest.mark.parametrize("bundle,shape,classes,message", [
    (_bundle(channels=3), (1, 8, 8), 10, r"^runs/ck takes 1-channel images but dataset mydata has 3-channel images; .*--dataset"),
    (_bundle(size=(28, 28)), (1, 32, 32), 10, r"^runs/ck takes 32x32 images but dataset mydata has 28x28; pass --image-size 32$"),
    (_bundle(size=(28, 28)), (1, 32, 16), 10, r"takes 32x16 images .* use data of that size \(--dataset, --data-dir\)"),
    (_bundle(num_classes=100), (1, 8, 8), 10, r"^runs/ck has 10 class outputs but dataset mydata has 100 classes"),
    (_bundle(num_classes=10), (1, 8, 8), 100, r"has 100 class outputs but dataset mydata has 10 classes"),
    (_bundle(num_classes=16, inferred=True), (1, 8, 8), 10, r"has 10 class outputs but dataset mydata has 16 classes"),
])
def test_check_fits_refuses_data_that_does_not_fit(bundle, shape, classes, message):
    with pytest.raises(PrunekitError, match=message) as err:
        check_fits(bundle, shape, classes, "runs/ck")
    assert "\n" not in str(err.value)
