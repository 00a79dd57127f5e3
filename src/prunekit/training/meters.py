"""Metrics accumulated over the batches of one pass (higher is better): a meter per pass.

A meter has ``update(outputs, targets)`` and ``compute() -> float`` (torchmetrics' interface, so a
torchmetrics metric is one too). :class:`BatchMean` averages a per-batch function over samples;
:class:`MeanIoU` accumulates a confusion matrix, since the IoU of a data set is not the mean of its
batches' IoUs.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch


class Meter(Protocol):
    """Accumulates a metric over batches; ``compute`` gives the value over everything seen."""

    def update(self, outputs: Any, targets: Any) -> None:
        """Add one batch."""

    def compute(self) -> Any:
        """The metric over every batch added (a number, or a 0-d tensor)."""


def count_of(targets: Any) -> int:
    """How many samples a batch of targets holds (its first dimension, or its length)."""
    return int(targets.shape[0]) if hasattr(targets, "shape") and len(targets.shape) else len(targets)


class BatchMean:
    """The sample-weighted mean of ``fn(outputs, targets)``, a batch's mean value (e.g. its accuracy)."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn, self.total, self.seen = fn, 0.0, 0

    def update(self, outputs: Any, targets: Any) -> None:
        """Add one batch's value, weighted by its number of samples."""
        n = count_of(targets)
        self.total += float(self.fn(outputs, targets)) * n
        self.seen += n

    def compute(self) -> float:
        """The mean over every sample seen (NaN before any)."""
        return self.total / self.seen if self.seen else float("nan")


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of correct arg-max predictions: per sample for labels [N], per pixel for masks [N, H, W]."""
    return float((outputs.argmax(1) == targets).float().mean())


class MeanIoU:
    """Mean intersection over union of the classes present (in the targets or the predictions), from a
    confusion matrix of per-pixel arg-max predictions against masks."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch of logits [N, C, ...] against integer targets [N, ...]."""
        pred = outputs.argmax(1).flatten().cpu()
        true = targets.flatten().long().cpu()
        self.confusion += torch.bincount(true * self.num_classes + pred,
                                         minlength=self.num_classes ** 2).reshape(self.num_classes, self.num_classes)

    def per_class(self) -> torch.Tensor:
        """IoU of every class (NaN for a class never predicted nor present)."""
        c = self.confusion.double()
        hits = c.diagonal()
        union = c.sum(0) + c.sum(1) - hits
        return torch.where(union > 0, hits / union.clamp_min(1), torch.full_like(hits, float("nan")))

    def compute(self) -> float:
        """The mean IoU of the classes seen (NaN before any batch)."""
        iou = self.per_class()
        seen = ~torch.isnan(iou)
        return float(iou[seen].mean()) if bool(seen.any()) else float("nan")
