"""A CSV-listed image data set: ``--dataset csv --data-dir FILE.csv`` (or a folder holding ``data.csv``).

One row per image: its path (relative to the CSV file's folder, or absolute), its label and, when
a third column is present, its split::

    path,label,split
    images/cat_01.png,cat,train
    images/dog_07.jpg,dog,test

* **Header**: the first row is a header when its first cell names no existing file and has no
  image extension. Known column names (``path``/``image``/``file``..., ``label``/``class``/
  ``target``..., ``split``/``subset``/``is_val``...) are found in any order; other names are read by
  position: path, label, split. This reads the NNI-based "Pruning" tool's ``data.csv`` unchanged
  (header row, then path, integer class id, and ``True``/``1`` for its held-out rows).
* **Labels**: all integers (class indices 0..N-1, every class present), or all class names,
  mapped to indices in sorted order (``info["classes"]``); classes come from the training rows.
* **Splits**: ``train``, ``val``/``validation``/``valid``, ``test``; ``True``/``1``/``yes`` mean
  held out (``val``) and ``False``/``0``/``no``/empty mean ``train``. When rows are marked ``test``,
  they are the test split and ``val`` rows the validation split. With no ``test`` rows, the ``val``
  rows are the test split and the validation split is carved from ``train`` (``--val-size``), so
  NetAdapt never selects on the rows you report. Without a split column a fixed 20 % of the rows
  (seed 0) is the test split.
* **Images**: read with Pillow; 1 channel when every image is greyscale, else all are converted
  to RGB (alpha dropped; 16-bit greyscale scaled to 8 bits). Images of different sizes need
  ``--image-size N`` (all resized to N x N, bilinear); equal sizes are kept unless it is given.
  Pixels are standardised per channel with the training rows' mean and std.

Any bad row (missing file, unreadable image, missing or non-integer label, wrong column count,
unknown split) is one PrunekitError naming the CSV file and the row's line number.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prunekit.data.bundle import TensorSplit, normalize_images
from prunekit.data.registry import RawData, register_dataset
from prunekit.data.validate import check_classes_present
from prunekit.errors import PrunekitError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
PATH_COLUMNS = ("path", "image", "img", "file", "filename", "filepath", "file_path", "image_path", "img_path",
                "image_name", "imgpath")
LABEL_COLUMNS = ("label", "class", "class_id", "classid", "class_name", "target", "category", "label_id", "y")
SPLIT_COLUMNS = ("split", "subset", "set", "fold", "is_val", "is_valid", "val", "valid", "validation")
SPLIT_VALUES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "true": "val", "1": "val", "yes": "val", "false": "train", "0": "train",
                "no": "train", "": "train"}
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
TEST_SHARE = 0.2


@dataclass
class Row:
    """One image row of the CSV: its line number, file, raw label text and split."""

    line: int
    file: Path
    cell: str
    label: str
    split: str


class _Csv:
    """Error messages that name the CSV file and a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, line: int | None, message: str) -> PrunekitError:
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        return PrunekitError(f"{where}: {message}")


def _is_header(cells: list[str], folder: Path) -> bool:
    first = cells[0].strip()
    names = {c.strip().lower() for c in cells}
    if names & set(PATH_COLUMNS + LABEL_COLUMNS) and not first.lower().endswith(IMAGE_EXTENSIONS):
        return True
    return not (folder / first).is_file() and not first.lower().endswith(IMAGE_EXTENSIONS)


def _columns(header: list[str] | None, width: int, src: _Csv) -> tuple[int, int, int | None]:
    """Indices of the path, label and split columns."""
    if header is not None:
        names = [c.strip().lower() for c in header]
        found = [next((i for i, n in enumerate(names) if n in known), None)
                 for known in (PATH_COLUMNS, LABEL_COLUMNS, SPLIT_COLUMNS)]
        if found[0] is not None and found[1] is not None:
            return found[0], found[1], found[2]
    if width not in (2, 3):
        raise src.error(1, f"expected 2 or 3 columns (path, label[, split]), found {width}; "
                           "or name them in a header row: path,label,split")
    return 0, 1, 2 if width == 3 else None


def read_rows(path: Path) -> tuple[list[Row], bool]:
    """The CSV's image rows, every one checked for its column count, file and split value, and
    whether the file has a split column."""
    src, folder = _Csv(path), path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = [(n, cells) for n, cells in _numbered(csv.reader(f)) if any(c.strip() for c in cells)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise src.error(None, f"cannot read it as a CSV file ({err})") from None
    if not lines:
        raise src.error(None, "the file lists no images")
    header = lines[0][1] if _is_header(lines[0][1], folder) else None
    width = len(lines[0][1])
    cols = _columns(header, width, src)
    rows = []
    for line, cells in lines[1:] if header is not None else lines:
        if len(cells) != width:
            raise src.error(line, f"{len(cells)} columns where the {'header' if header else 'first row'} has {width}")
        rows.append(_row(line, [c.strip() for c in cells], cols, folder, src))
    if not rows:
        raise src.error(None, "the file has a header but lists no images")
    return rows, cols[2] is not None


def _numbered(reader) -> list[tuple[int, list[str]]]:
    return [(reader.line_num, cells) for cells in reader]


def _row(line: int, cells: list[str], cols: tuple[int, int, int | None], folder: Path, src: _Csv) -> Row:
    path_col, label_col, split_col = cols
    cell = cells[path_col]
    if not cell:
        raise src.error(line, "the image path is empty")
    file = folder / cell
    if not file.is_file():
        raise src.error(line, f"image {cell} not found (looked for {file})")
    if not cells[label_col]:
        raise src.error(line, f"image {cell} has no label")
    split = "train"
    if split_col is not None:
        value = cells[split_col].lower()
        if value not in SPLIT_VALUES:
            raise src.error(line, f"split {cells[split_col]!r} is not train, val or test (or True/False for held out)")
        split = SPLIT_VALUES[value]
    return Row(line, file, cell, cells[label_col], split)


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def label_indices(rows: list[Row], train: list[Row], src: _Csv) -> tuple[list[int], list[str] | None, int]:
    """Each row's class index, the class names (None for integer labels) and the class count.

    Classes are defined by the training rows: a label only held-out rows carry is refused."""
    ints = [_as_int(r.label) for r in rows]
    if all(v is not None for v in ints):
        bad = next((r for r, v in zip(rows, ints) if v < 0), None)
        if bad is not None:
            raise src.error(bad.line, f"label {bad.label} is negative; integer labels are class indices 0, 1, 2, ...")
        count = check_classes_present(torch.tensor([int(r.label) for r in train]), f"{src.path} (training rows)")
        big = next((r for r, v in zip(rows, ints) if v >= count), None)
        if big is not None:
            raise src.error(big.line, f"label {big.label} is not a class of the training rows (0-{count - 1})")
        return [int(v) for v in ints], None, count  # type: ignore[arg-type]
    bad = next((r for r in rows if _is_number(r.label)), None)
    if bad is not None:
        name = next((r for r in rows if not _is_number(r.label)), None)
        if name is None:
            bad = next(r for r in rows if _as_int(r.label) is None)
            raise src.error(bad.line, f"label {bad.label!r} is not an integer; labels are class indices 0, 1, 2, ... "
                                      "or class names")
        raise src.error(bad.line, f"label {bad.label!r} is a number while line {name.line}'s label "
                                  f"{name.label!r} is a class name; use integers 0..N-1 or names, not both")
    names = sorted({r.label for r in train})
    index = {n: i for i, n in enumerate(names)}
    unknown = next((r for r in rows if r.label not in index), None)
    if unknown is not None:
        raise src.error(unknown.line, f"class {unknown.label!r} has no training row")
    return [index[r.label] for r in rows], names, len(names)


def split_rows(rows: list[Row], has_split: bool, src: _Csv) -> dict[str, list[Row]]:
    """The rows of each final split: ``train``, ``test`` and ``val`` (empty: carve it from train)."""
    if not has_split:
        if len(rows) < 2:
            raise src.error(None, "one image is not enough for a training and a test split")
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
        held = set(order[:max(1, round(TEST_SHARE * len(rows)))])
        return {"train": [r for i, r in enumerate(rows) if i not in held],
                "test": [r for i, r in enumerate(rows) if i in held], "val": []}
    by = {s: [r for r in rows if r.split == s] for s in ("train", "val", "test")}
    if not by["train"]:
        raise src.error(None, "no row is marked train; mark the training images train (or False) in the split column")
    if by["test"]:
        return by
    if not by["val"]:
        raise src.error(None, "no row is held out; mark some rows test (or val / True) in the split column")
    return {"train": by["train"], "test": by["val"], "val": []}


def _probe(rows: list[Row], src: _Csv) -> list[tuple[str, tuple[int, int]]]:
    """Each image's mode and (width, height), read from its header only."""
    from PIL import Image

    out = []
    for r in rows:
        try:
            with Image.open(r.file) as im:
                out.append((im.mode, im.size))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise src.error(r.line, f"cannot read image {r.cell} ({err})") from None
    return out


def _target_size(rows: list[Row], sizes: list[tuple[int, int]], image_size: int | None, src: _Csv) -> tuple[int, int]:
    """(H, W) every image is brought to: ``image_size`` square, else the one size all images share."""
    if image_size:
        return int(image_size), int(image_size)
    first = {}
    for r, size in zip(rows, sizes):
        first.setdefault(size, r.line)
    if len(first) > 1:
        (a, la), (b, lb) = list(first.items())[:2]
        raise src.error(None, f"images have different sizes ({a[0]}x{a[1]} on line {la}, {b[0]}x{b[1]} on line {lb}); "
                              "pass --image-size N to resize every image to N x N")
    width, height = sizes[0]
    return height, width


def _pixels(im, channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 [C, H, W]: greyscale or RGB, resized to ``size`` (H, W)."""
    from PIL import Image

    if im.mode.startswith("I;16"):
        im = Image.fromarray((np.asarray(im, dtype=np.uint32) // 257).astype(np.uint8))
    elif im.mode in ("I", "F"):
        im = Image.fromarray(np.clip(np.asarray(im, dtype=np.float64), 0, 255).astype(np.uint8))
    im = im.convert("L" if channels == 1 else "RGB")
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def decode(rows: list[Row], channels: int, size: tuple[int, int], src: _Csv) -> torch.Tensor:
    """Every row's image as one uint8 tensor [N, C, H, W]."""
    from PIL import Image

    out = np.empty((len(rows), channels, *size), dtype=np.uint8)
    for i, r in enumerate(rows):
        try:
            with Image.open(r.file) as im:
                out[i] = _pixels(im, channels, size)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise src.error(r.line, f"cannot read image {r.cell} ({err})") from None
    return torch.from_numpy(out)


def _csv_file(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise PrunekitError("the csv dataset needs --data-dir FILE.csv (rows of image path, label[, split])")
    path = data_dir / "data.csv" if data_dir.is_dir() else data_dir
    if not path.is_file():
        raise PrunekitError(f"CSV dataset file {path} does not exist; pass --data-dir FILE.csv")
    return path


@register_dataset("csv")
def csv_dataset(data_dir: Path | None = None, download: bool = False, image_size: int | None = None) -> RawData:
    """Images listed in a CSV file (path, label[, split]); see the module's docstring for the format."""
    path = _csv_file(data_dir)
    src = _Csv(path)
    rows, has_split = read_rows(path)
    parts = split_rows(rows, has_split, src)
    labels, classes, num_classes = label_indices(rows, parts["train"], src)
    label_of = {id(r): y for r, y in zip(rows, labels)}
    probed = _probe(rows, src)
    channels = 1 if all(mode in GREY_MODES for mode, _ in probed) else 3
    size = _target_size(rows, [s for _, s in probed], image_size, src)
    names = [n for n in ("train", "test", "val") if parts[n]]
    pixels = [decode(parts[n], channels, size, src) for n in names]
    normalised, mean, std = normalize_images(*pixels)
    splits = {n: TensorSplit(x, torch.tensor([label_of[id(r)] for r in parts[n]], dtype=torch.long))
              for n, x in zip(names, normalised)}
    info = {"source": str(path), "files": {n: str(path) for n in names}, "mean": mean, "std": std,
            "classes_from_labels": True, "channels": channels}
    if classes is not None:
        info.update(classes=classes, class_to_index={c: i for i, c in enumerate(classes)})
    return RawData(train=splits["train"], test=splits["test"], val=splits.get("val"), num_classes=num_classes,
                   in_channels=channels, input_size=size, info=info)
