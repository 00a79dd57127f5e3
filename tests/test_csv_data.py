"""The CSV-listed image data set (``--dataset csv --data-dir FILE.csv``) on tiny PNG files written in tmp."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from prunekit.data import batches, list_datasets, load_dataset
from prunekit.errors import PrunekitError

COLOURS = {"cat": (250, 20, 20), "dog": (20, 20, 250), "owl": (20, 250, 20)}


def write_images(folder, n=4, size=(12, 10), mode="RGB", classes=("cat", "dog")):
    """``n`` images per class in ``folder/images``; returns [(relative path, class name)]."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    out = []
    for k, name in enumerate(classes):
        for i in range(n):
            rel = f"images/{name}_{i}.png"
            colour = COLOURS[name] if mode == "RGB" else 40 + 80 * k
            Image.new(mode, size, colour).save(folder / rel)
            out.append((rel, name))
    return out


def write_csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def split_of(i):
    return "test" if i % 4 == 3 else "train"


def test_registered():
    assert "csv" in list_datasets()


def test_header_names_class_labels_and_split_column(tmp_path):
    rows = write_images(tmp_path, n=8)
    csv = write_csv(tmp_path / "set.csv", ["path,label,split"] + [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", csv, val_size=2)
    assert data.input_shape == (3, 10, 12) and data.num_classes == 2
    assert data.info["classes"] == ["cat", "dog"] and data.info["class_to_index"] == {"cat": 0, "dog": 1}
    assert (len(data.train), len(data.val), len(data.test)) == (10, 2, 4)
    x, y = next(batches(data.test, 4))
    assert x.shape == (4, 3, 10, 12) and y.dtype == torch.long
    # red images are class 0 (cat): their red channel is above the mean
    red = data.test.x[data.test.y == 0][:, 0].mean()
    assert red > 0


def test_columns_found_by_name_in_any_order(tmp_path):
    rows = write_images(tmp_path)
    csv = write_csv(tmp_path / "set.csv", ["split,class,image"] + [f"{split_of(i)},{c},{p}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", csv, val_size=1)
    assert data.num_classes == 2 and len(data.test) == 2


def test_no_header_integer_labels_and_no_split_column(tmp_path):
    rows = write_images(tmp_path, n=5)
    csv = write_csv(tmp_path / "set.csv", [f"{p},{0 if c == 'cat' else 1}" for p, c in rows])
    data = load_dataset("csv", csv, val_size=1)
    assert "classes" not in data.info and data.num_classes == 2
    assert len(data.test) == 2 and len(data.train) + len(data.val) == 8  # a fixed 20 % is the test split
    again = load_dataset("csv", csv, val_size=1)
    assert torch.equal(again.test.x, data.test.x)


def test_pruning_tool_data_csv_layout_in_a_folder(tmp_path):
    """The NNI-based "Pruning" tool: DATASET/data.csv, a header, then path, class id, True for held-out rows."""
    rows = write_images(tmp_path, n=5)
    write_csv(tmp_path / "data.csv", ["image_path,class_id,is_val"] +
              [f"{p},{0 if c == 'cat' else 1},{'True' if i % 5 == 0 else 'False'}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", tmp_path, val_size=2)
    assert len(data.test) == 2  # the held-out rows are the test split ...
    assert (len(data.train), len(data.val)) == (6, 2)  # ... and validation is carved from the training rows


def test_val_rows_are_the_validation_split_when_test_rows_exist(tmp_path):
    rows = write_images(tmp_path, n=6)
    marks = ["train", "train", "train", "train", "val", "test"]
    csv = write_csv(tmp_path / "set.csv", ["path,label,split"] + [f"{p},{c},{marks[i % 6]}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", csv, val_size=0.5)  # unused: the file names its validation rows
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 2)


def test_grayscale_images_give_one_channel(tmp_path):
    rows = write_images(tmp_path, mode="L")
    csv = write_csv(tmp_path / "set.csv", [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", csv, val_size=1)
    assert data.in_channels == 1 and data.info["channels"] == 1


def test_mixed_modes_are_all_converted_to_rgb(tmp_path):
    rows = write_images(tmp_path, mode="L")
    Image.new("RGBA", (12, 10), (1, 2, 3, 4)).save(tmp_path / rows[0][0])
    Image.new("P", (12, 10)).save(tmp_path / rows[1][0])
    Image.fromarray((torch.arange(120).reshape(10, 12) * 500).numpy().astype("uint16")).save(tmp_path / rows[2][0])
    csv = write_csv(tmp_path / "set.csv", [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)])
    data = load_dataset("csv", csv, val_size=1)
    assert data.in_channels == 3 and torch.isfinite(data.train.x).all()


def test_different_sizes_need_image_size(tmp_path):
    rows = write_images(tmp_path)
    Image.new("RGB", (30, 7), (9, 9, 9)).save(tmp_path / rows[5][0])
    csv = write_csv(tmp_path / "set.csv", [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)])
    with pytest.raises(PrunekitError, match=r"set.csv: images have different sizes \(12x10 on line 1, 30x7 on line 6\).*--image-size"):
        load_dataset("csv", csv)
    data = load_dataset("csv", csv, image_size=16, val_size=1)
    assert data.input_shape == (3, 16, 16) and data.info["image_size"] == 16


BAD_ROWS = [
    ("images/none.png,cat,train", r"line 3: image images/none.png not found"),
    ("images/cat_0.png,cat", r"line 3: 2 columns where the header has 3"),
    ("images/cat_0.png,cat,train,extra", r"line 3: 4 columns"),
    ("images/cat_0.png,,train", r"line 3: image images/cat_0.png has no label"),
    ("images/cat_0.png,cat,maybe", r"line 3: split 'maybe' is not train, val or test"),
    ("images/broken.png,cat,train", r"line 3: cannot read image images/broken.png"),
    ("images/cat_0.png,2.5,train", r"line 3: label '2.5' is a number while line 2's label 'cat' is a class name"),
    ("images/cat_0.png,owl,test", r"line 3: class 'owl' has no training row"),
]


@pytest.mark.parametrize("bad,message", BAD_ROWS)
def test_a_bad_row_is_one_error_naming_the_file_and_line(tmp_path, bad, message):
    rows = write_images(tmp_path)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png at all")
    lines = ["path,label,split", f"{rows[0][0]},{rows[0][1]},train", bad] + [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)]
    csv = write_csv(tmp_path / "set.csv", lines)
    with pytest.raises(PrunekitError, match=str(csv).replace(".", r"\.") + ", " + message):
        load_dataset("csv", csv)


@pytest.mark.parametrize("labels,message", [
    ([0, 1, 2.5], r"line 3: label '2.5' is not an integer"),
    ([0, 1, -1], r"line 3: label -1 is negative"),
    ([0, 1, 15], r"label 15 of sample 2 implies 16 classes but class\(es\) 2, 3, 4, 5, 6, ... have no sample"),
])
def test_bad_integer_labels(tmp_path, labels, message):
    rows = write_images(tmp_path, n=2)
    lines = [f"{rows[i][0]},{lab},train" for i, lab in enumerate(labels)] + [f"{rows[3][0]},0,test"]
    csv = write_csv(tmp_path / "set.csv", lines)
    with pytest.raises(PrunekitError, match=message):
        load_dataset("csv", csv, val_size=0)


def test_a_test_label_unknown_to_training_rows(tmp_path):
    rows = write_images(tmp_path, n=2)
    csv = write_csv(tmp_path / "set.csv", [f"{rows[0][0]},0,train", f"{rows[1][0]},1,train", f"{rows[2][0]},2,test"])
    with pytest.raises(PrunekitError, match=r"line 3: label 2 is not a class of the training rows \(0-1\)"):
        load_dataset("csv", csv, val_size=0)


@pytest.mark.parametrize("content,message", [
    ("", "lists no images"),
    ("path,label,split\n", "has a header but lists no images"),
    ("a.png\n", "line 1: expected 2 or 3 columns"),
])
def test_unusable_files(tmp_path, content, message):
    (tmp_path / "a.png").write_bytes(b"")
    csv = tmp_path / "set.csv"
    csv.write_text(content)
    with pytest.raises(PrunekitError, match=message):
        load_dataset("csv", csv)


def test_missing_file_and_missing_option(tmp_path):
    with pytest.raises(PrunekitError, match="does not exist"):
        load_dataset("csv", tmp_path / "nowhere.csv")
    with pytest.raises(PrunekitError, match="--data-dir FILE.csv"):
        load_dataset("csv")


def test_no_held_out_rows(tmp_path):
    rows = write_images(tmp_path, n=2)
    csv = write_csv(tmp_path / "set.csv", [f"{p},{c},train" for p, c in rows])
    with pytest.raises(PrunekitError, match="no row is held out"):
        load_dataset("csv", csv)


def test_train_from_the_command_line(tmp_path, capsys):
    from prunekit.cli.main import main

    rows = write_images(tmp_path, n=6, size=(9, 7))
    csv = write_csv(tmp_path / "set.csv", ["path,label,split"] + [f"{p},{c},{split_of(i)}" for i, (p, c) in enumerate(rows)])
    out = tmp_path / "ck"
    assert main(["train", "--model", "lenet", "--dataset", "csv", "--data-dir", str(csv), "--image-size", "8",
                 "--epochs", "1", "--val-size", "2", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "model.json").read_text())["input_shape"] == [3, 8, 8]
    write_csv(csv, ["path,label,split", "images/missing.png,cat,train"])
    capsys.readouterr()
    assert main(["train", "--model", "lenet", "--dataset", "csv", "--data-dir", str(csv), "--epochs", "1",
                 "--out", str(tmp_path / "ck2"), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "set.csv, line 2: image images/missing.png not found" in err
