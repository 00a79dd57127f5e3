"""``shapes``: a synthetic segmentation set generated in seconds (seeded; nothing is downloaded).

Each image holds one to four shapes (ellipses, rectangles, triangles: classes 1, 2, 3; 0 is the
background), at random places, sizes, angles and colours, over a noisy background of a random
colour, so a shape's class shows in its outline only. The targets are masks: the class of every
pixel. :func:`generate_shapes` also gives every shape's box, for detection examples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch

from prunekit.data.bundle import TensorSplit, normalize_images
from prunekit.data.registry import RawData, register_dataset

CLASSES = ("background", "ellipse", "rectangle", "triangle")
TRAIN, TEST = 2400, 600
CHUNK = 256


class Shapes(NamedTuple):
    """Images [N, 3, H, W] (uint8), masks [N, H, W] (class per pixel) and boxes [N, K, 5]: class, x0, y0, x1, y1
    in pixels of every shape drawn (class 0: no shape in that slot; a shape may be partly covered by a later one)."""

    images: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor


def _inside_triangle(u: torch.Tensor, v: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Whether points (u, v) [n, H, W] are inside the triangles ``corners`` [n, 3, 2] (either winding)."""
    signs = []
    for i in range(3):
        (ax, ay), (bx, by) = corners[:, i].T, corners[:, (i + 1) % 3].T
        signs.append((bx - ax)[:, None, None] * (v - ay[:, None, None]) - (by - ay)[:, None, None] * (u - ax[:, None, None]))
    s = torch.stack(signs)
    return (s >= 0).all(0) | (s <= 0).all(0)


def _slot_masks(n: int, size: int, kinds: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random shape of the given kinds (1-3) per image: its pixels [n, H, W]."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = grid[None, :, None], grid[None, None, :]
    centre = torch.rand(n, 2, generator=gen) * 0.6 + 0.2
    radius = torch.rand(n, 2, generator=gen) * 0.14 + 0.08
    angle = torch.rand(n, generator=gen) * math.pi
    dx, dy = xx - centre[:, 0, None, None], yy - centre[:, 1, None, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    rx, ry = radius[:, 0, None, None], radius[:, 1, None, None]
    ellipse = (u / rx) ** 2 + (v / ry) ** 2 <= 1
    rectangle = (u.abs() <= rx) & (v.abs() <= ry)
    turns = angle[:, None] + torch.tensor([0.0, 2.1, 4.2]) + torch.rand(n, 3, generator=gen) * 0.4
    r = radius.max(1).values[:, None] * 1.3
    corners = torch.stack([r * turns.cos(), r * turns.sin()], -1) + centre[:, None, :]
    triangle = _inside_triangle(xx.expand(n, size, size), yy.expand(n, size, size), corners)
    k = kinds[:, None, None]
    return torch.where(k == 1, ellipse, torch.where(k == 2, rectangle, triangle))


def _chunk(n: int, size: int, max_shapes: int, gen: torch.Generator) -> Shapes:
    background = torch.rand(n, 3, 1, 1, generator=gen) * 255
    images = background + torch.randn(n, 3, size, size, generator=gen) * 12
    masks = torch.zeros(n, size, size, dtype=torch.long)
    count = torch.randint(1, max_shapes + 1, (n,), generator=gen)
    boxes = torch.zeros(n, max_shapes, 5)
    for slot in range(max_shapes):
        kinds = torch.randint(1, len(CLASSES), (n,), generator=gen)
        colour = torch.rand(n, 3, generator=gen) * 255
        pixels = _slot_masks(n, size, kinds, gen) & (slot < count)[:, None, None]
        masks[pixels] = kinds[:, None, None].expand_as(masks)[pixels]
        images = torch.where(pixels[:, None], colour[:, :, None, None], images)
        rows, cols = pixels.any(2), pixels.any(1)
        drawn = rows.any(1)
        idx = torch.arange(size)
        boxes[:, slot] = torch.stack([
            torch.where(drawn, kinds, 0).float(),
            torch.where(cols, idx, size).min(1).values.float(), torch.where(rows, idx, size).min(1).values.float(),
            torch.where(cols, idx, -1).max(1).values.float() + 1, torch.where(rows, idx, -1).max(1).values.float() + 1,
        ], 1) * drawn[:, None]
    return Shapes(images.clamp(0, 255).round().to(torch.uint8), masks, boxes)


def generate_shapes(n: int, size: int = 64, seed: int = 0, max_shapes: int = 4) -> Shapes:
    """``n`` images of ``size`` x ``size`` pixels with their masks and boxes (the same for the same seed)."""
    gen = torch.Generator().manual_seed(seed)
    parts = [_chunk(min(CHUNK, n - start), size, max_shapes, gen) for start in range(0, n, CHUNK)]
    return Shapes(*(torch.cat(p) for p in zip(*parts)))


@register_dataset("shapes")
def shapes(data_dir: Path | None = None, download: bool = False, image_size: int = 64) -> RawData:
    """2400 training and 600 test images (``image_size`` square, default 64) of ellipses, rectangles and
    triangles, with per-pixel masks of 4 classes (background included); standardised per channel."""
    train, test = generate_shapes(TRAIN, image_size, seed=0), generate_shapes(TEST, image_size, seed=1)
    (train_x, test_x), mean, std = normalize_images(train.images, test.images)
    return RawData(train=TensorSplit(train_x, train.masks), test=TensorSplit(test_x, test.masks),
                   num_classes=len(CLASSES), in_channels=3, input_size=(image_size, image_size),
                   info={"source": "generated (prunekit.data.shapes)", "classes": list(CLASSES), "mean": mean,
                         "std": std, "targets": "masks"})
