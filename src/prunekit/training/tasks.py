"""What a model is trained for: a task's loss (what training minimises) and metric (what evaluation
reports and NetAdapt's candidates are ranked by; higher is better).

Built in (each one registered, so a new one is one decorated function):

- tasks: ``classification`` (labels [N]: cross-entropy, top-1 accuracy; the default) and
  ``segmentation`` (masks [N, H, W] of class indices: per-pixel cross-entropy, mean IoU);
- losses: ``cross_entropy``; metrics: ``accuracy`` (per pixel on masks), ``miou``.

Your own loss or metric is one function named ``package.module:function``:
``loss(outputs, targets) -> scalar tensor`` (the batch mean) and ``metric(outputs, targets) ->
number`` (the batch's mean value; averaged over samples), or for a metric that does not average
over batches (mIoU, mAP) a class with ``update(outputs, targets)`` and ``compute()`` (torchmetrics'
interface), built once per pass with ``num_classes=`` when its constructor takes it. A name is
imported only when the user names it (``--loss`` / ``--metric`` on the command line) or trusts every
name (``--trust-factory``; Python: inside :func:`prunekit.models.trusting`, or pass the function
itself): never because a checkpoint or a config file names it.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch.nn.functional as F

from prunekit.errors import PrunekitError
from prunekit.models.factory import import_function, shown
from prunekit.models.trust import allowed
from prunekit.registry import Registry
from prunekit.training.meters import BatchMean, MeanIoU, Meter, accuracy

LossFn = Callable[[Any, Any], Any]
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task: its loss and metric by name, and what its targets are (``labels`` or ``masks``)."""

    loss: str
    metric: str
    targets: str


TASKS: Registry[Callable[[], TaskSpec]] = Registry("task")
LOSSES: Registry[LossFn] = Registry("loss")
METRICS: Registry[Callable[[int | None], Meter]] = Registry("metric")
register_task, register_loss, register_metric = TASKS.register, LOSSES.register, METRICS.register


def list_tasks() -> list[str]:
    """Registered task names."""
    return TASKS.names()


@register_task("classification")
def classification() -> TaskSpec:
    """One class label per sample: cross-entropy, top-1 accuracy."""
    return TaskSpec("cross_entropy", "accuracy", "labels")


@register_task("segmentation")
def segmentation() -> TaskSpec:
    """A class index per pixel (masks [N, H, W], logits [N, C, H, W]): per-pixel cross-entropy, mean IoU."""
    return TaskSpec("cross_entropy", "miou", "masks")


@register_loss("cross_entropy")
def cross_entropy(outputs: Any, targets: Any) -> Any:
    """Mean cross-entropy of logits [N, C] against labels [N] (or [N, C, H, W] against masks [N, H, W])."""
    return F.cross_entropy(outputs, targets)


@register_metric("accuracy")
def accuracy_meter(num_classes: int | None) -> Meter:
    """Top-1 accuracy (per pixel on masks)."""
    return BatchMean(accuracy)


@register_metric("miou")
def miou_meter(num_classes: int | None) -> Meter:
    """Mean IoU over the classes present (masks)."""
    if not num_classes:
        raise PrunekitError("metric miou needs the number of classes (the dataset's)")
    return MeanIoU(num_classes)


@dataclass(frozen=True)
class Objective:
    """A task resolved to code: ``loss(outputs, targets)``, ``meter()`` (a fresh metric accumulator per pass),
    the metric's name in records (``accuracy`` fields hold it: e.g. ``miou``) and the targets it expects."""

    task: str
    loss: LossFn
    meter: Callable[[], Meter]
    metric: str = "accuracy"
    loss_name: str = "cross_entropy"
    targets: str = "labels"

    def describe(self) -> str:
        """One line: task, loss and metric."""
        return f"task {self.task}: loss {self.loss_name}, metric {self.metric}"


def is_user_function(name: Any) -> bool:
    """Whether ``name`` names a user's ``package.module:function`` (imported only with permission)."""
    return isinstance(name, str) and ":" in name


def import_user_function(path: str, role: str) -> Any:
    """Import ``package.module:function`` named as the ``role`` (loss or metric), if the user allowed it."""
    if not _USER.match(path):
        raise PrunekitError(f"--{role} {shown(path)} is not a package.module:function")
    if not allowed(path):
        raise PrunekitError(f"the {role} {shown(path)} is code of yours: prunekit imports it only when you name it on "
                            f"the command line (--{role} {shown(path)}) or pass --trust-factory (Python: inside "
                            f"prunekit.models.trusting({path!r}), or pass the function itself), never because a "
                            "checkpoint or config file names it")
    return import_function(path, f"--{role} {path}: ")


def _named(value: Any) -> str:
    return str(getattr(value, "metric_name", None) or getattr(value, "__name__", None) or type(value).__name__)


def resolve_loss(value: str | LossFn) -> tuple[LossFn, str]:
    """(loss function, its name) from a registered name, a ``package.module:function`` or a callable."""
    if callable(value):
        return value, _named(value)
    if is_user_function(value):
        return import_user_function(value, "loss"), value
    return LOSSES.get(value), value


def _instance(cls: type, num_classes: int | None) -> Meter:
    try:
        takes = "num_classes" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        takes = False
    meter = cls(num_classes=num_classes) if takes and num_classes is not None else cls()
    if not (hasattr(meter, "update") and hasattr(meter, "compute")):
        raise PrunekitError(f"metric class {cls.__name__} has no update() and compute(): give a function "
                            "(outputs, targets) -> number, or a class with both")
    return meter


def resolve_metric(value: str | Callable, num_classes: int | None) -> tuple[Callable[[], Meter], str]:
    """(meter factory, the metric's name) from a registered name, a ``package.module:function`` or a callable:
    a class is a meter (``update``/``compute``), a function gives each batch's mean value."""
    if isinstance(value, str) and not is_user_function(value):
        factory = METRICS.get(value)
        factory(num_classes)  # a metric that cannot work (miou without classes) is refused now
        return (lambda: factory(num_classes)), value
    fn = import_user_function(value, "metric") if isinstance(value, str) else value
    if inspect.isclass(fn):
        return (lambda: _instance(fn, num_classes)), _named(fn)
    return (lambda: BatchMean(fn)), _named(fn)


def make_objective(task: str = "classification", loss: str | LossFn | None = None, metric: str | Callable | None = None,
                   num_classes: int | None = None) -> Objective:
    """The task's loss and metric, either replaced by ``loss`` / ``metric`` (a registered name, a user's
    ``package.module:function``, or in Python the function itself)."""
    spec = TASKS.get(task)()
    loss_fn, loss_name = resolve_loss(loss if loss is not None else spec.loss)
    meter, metric_name = resolve_metric(metric if metric is not None else spec.metric, num_classes)
    return Objective(task, loss_fn, meter, metric_name, loss_name, spec.targets)


CLASSIFICATION = make_objective()
"""The default objective: cross-entropy and top-1 accuracy on class labels."""
