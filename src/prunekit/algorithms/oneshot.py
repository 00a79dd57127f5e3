"""One-shot channel pruning: score every group with a criterion, remove the least important channels."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from prunekit.algorithms.plans import carry_metadata, one_input
from prunekit.algorithms.selection import global_counts, global_order, local_counts, lowest, search_budget
from prunekit.criteria import get_criterion, needs_gradients, score_group
from prunekit.errors import PrunekitError, first_line
from prunekit.resources.metric import RESOURCES, MetricContext, list_resources, make_metric
from prunekit.settings import Settings, setting
from prunekit.structure import ModelStructure, analyze

log = logging.getLogger(__name__)
SCOPES = ("local", "global")


def _criteria() -> list[str]:
    from prunekit.criteria import list_criteria

    return list_criteria()


@dataclass
class PruneConfig(Settings):
    """One-shot pruning's settings: what to remove and how much (defined once for the CLI, YAML and API)."""

    criterion: str = setting("l2", "channel criterion", choices=_criteria)
    ratio: float | None = setting(None, "share of channels to remove, in [0, 1)")
    budget_ratio: float | None = setting(None, "prune until the resource is at most this share of the model's")
    budget: float | None = setting(None, "prune until the resource is at most this (in resource units)")
    resource: str = setting("macs", "resource of the budget", choices=list_resources)
    scope: str = setting("local", "each group by the ratio (local), or rank channels across groups (global)",
                         choices=SCOPES)
    round_to: int = setting(1, "keep every pruned width a multiple of N")
    exclude: list[str] = setting(factory=list, help="layer names to keep whole", metavar="LAYER")
    attention: str = setting("head_dims", "attention layers: prune one dimension in every head (head_dims), whole "
                                          "heads (heads), or neither (none)", choices=("head_dims", "heads", "none"))
    threshold: float | None = setting(None, "threshold of threshold_count (default: each layer's mean |w|)")
    gradient_batches: int = setting(4, "training batches of gradients for gradient-based criteria (taylor)")
    seed: int = setting(0, "seed (random criterion, the batches of gradient-based criteria, the initial weights of a --model)")

    def kwargs(self) -> dict:
        """Keyword arguments of :func:`prune`."""
        return {k: v for k, v in self.to_dict().items()}

    def validate(self) -> None:
        """Raise a clear error for settings that cannot work (before any model or data is loaded)."""
        _check(self.ratio, self.budget, self.budget_ratio, self.scope, self.resource)
        get_criterion(self.criterion)
        if self.gradient_batches < 1:
            raise PrunekitError(f"--gradient-batches must be at least 1, got {self.gradient_batches}")


def _check(ratio, budget, budget_ratio, scope, resource) -> None:
    given = [x is not None for x in (ratio, budget, budget_ratio)]
    if sum(given) != 1:
        raise PrunekitError("give exactly one of --ratio (run: --percent), --budget or --budget-ratio")
    if ratio is not None and not 0 <= ratio < 1:
        raise PrunekitError(f"ratio must be in [0, 1), got {ratio}")
    if budget_ratio is not None and not 0 < budget_ratio < 1:
        raise PrunekitError(f"budget_ratio must be in (0, 1), got {budget_ratio}: it is the share of the model's "
                            "resource to keep")
    if budget is not None and budget <= 0:
        raise PrunekitError(f"budget must be positive, got {budget}")
    if scope not in SCOPES:
        raise PrunekitError(f"scope must be 'local' or 'global', got {scope!r}")
    if resource not in list_resources():
        raise PrunekitError(f"unknown resource {resource!r}; valid: {', '.join(list_resources())}")
    if not getattr(RESOURCES.get(resource), "oneshot", True):
        raise PrunekitError(f"one-shot pruning budgets macs, flops or params; a {resource} budget needs NetAdapt "
                            "(prunekit netadapt, or prunekit run --method netadapt)")


def unscorable(criterion: str, model: nn.Module, structure: ModelStructure) -> str:
    """Why ``criterion`` scores no group of the model, and what to do (an error message)."""
    if not structure.groups:
        return "this model has no prunable channel group (every layer is excluded or fixed by its shape)"
    needs_bn = get_criterion(criterion).__name__.startswith("bn_")
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    why = ": it has no BatchNorm layer, and this criterion scores BatchNorm scales" if needs_bn and not has_bn else ""
    return (f"criterion {criterion!r} cannot score any channel group of this model{why}; choose another criterion "
            "(e.g. l1)")


def accumulate_gradients(model: nn.Module, data: Iterable, batches: int) -> None:
    """Sum the cross-entropy gradients of up to ``batches`` batches of ``data`` into ``param.grad``."""
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()  # BN statistics stay as trained; gradients still flow
    used = 0
    for x, y in data:
        out = model(x)
        if torch.is_tensor(y) and not y.dtype.is_floating_point and y.numel():  # class indices (labels, masks)
            bad = y[(y < 0) | (y >= out.shape[1])]
            if bad.numel():
                raise PrunekitError(f"the data for gradient-based criteria has label {int(bad[0])} for a model of "
                                    f"{out.shape[1]} classes: labels must be 0 to {out.shape[1] - 1}")
        try:
            loss = F.cross_entropy(out, y)
        except (RuntimeError, ValueError, TypeError) as err:
            raise PrunekitError(f"the data for gradient-based criteria does not fit the model's outputs "
                                f"{tuple(out.shape)}: {first_line(err)}") from None
        loss.backward()
        used += 1
        if used >= batches:
            break
    model.train(was_training)
    if used == 0:
        raise PrunekitError("the data for gradient-based criteria is empty")


def score_groups(structure: ModelStructure, criterion: str, *, seed: int = 0, threshold: float | None = None) -> dict[str, torch.Tensor]:
    """Scores of every group the criterion can score (others are left out, and so kept whole)."""
    scores = {}
    for g in structure.groups:
        s = score_group(structure, g.name, criterion, seed=seed, threshold=threshold)
        if s is None:
            log.info("criterion %s cannot score group %s: kept whole", criterion, g.name)
            continue
        scores[g.name] = s
    return scores


def prune(
    model: nn.Module,
    example_inputs,
    ratio: float | None = None,
    criterion: str = "l2",
    scope: str = "local",
    exclude: Sequence[str] = (),
    round_to: int = 1,
    budget: float | None = None,
    resource: str = "macs",
    data: Iterable | None = None,
    *,
    budget_ratio: float | None = None,
    seed: int = 0,
    threshold: float | None = None,
    gradient_batches: int = 4,
    attention: str = "head_dims",
) -> nn.Module:
    """A pruned copy of ``model`` (the input is left untouched).

    ``ratio``: remove that share of channels, from every group (``scope="local"``) or by
    normalised score across groups (``"global"``). ``budget`` (absolute, in ``resource`` units:
    MACs, FLOPs or parameters) or ``budget_ratio`` (of the model's own): prune until the resource
    is at or under it. ``data`` (an iterable of (inputs, labels) batches) feeds criteria that need
    gradients (``taylor``). ``exclude`` keeps the named layers whole; ``round_to`` keeps widths
    multiples of it.
    """
    get_criterion(criterion)  # first: its error lists the valid criteria
    example_inputs = one_input(example_inputs)
    # the settings checked as PruneConfig checks them (types, finite numbers, ranges), the CLI and YAML's way
    PruneConfig(criterion=criterion, ratio=ratio, budget_ratio=budget_ratio, budget=budget, resource=resource,
                scope=scope, round_to=round_to, exclude=list(exclude or ()), attention=attention, threshold=threshold,
                gradient_batches=gradient_batches, seed=seed).validate()
    if needs_gradients(criterion) and data is None:
        raise PrunekitError(f"criterion {criterion!r} needs data: pass data= (batches of inputs and labels)")
    pruned = copy.deepcopy(model)
    structure = analyze(pruned, example_inputs, exclude=exclude, round_to=round_to, attention=attention)
    if needs_gradients(criterion):
        accumulate_gradients(pruned, data, gradient_batches)
    scores = score_groups(structure, criterion, seed=seed, threshold=threshold)
    if not scores:
        raise PrunekitError(unscorable(criterion, pruned, structure))
    pruned.zero_grad(set_to_none=True)
    if ratio is not None:
        if scope == "local":
            counts = local_counts(structure, scores, ratio)
        else:
            total = int(ratio * sum(structure.group(n).channels for n in scores))
            counts = global_counts(structure, global_order(scores), total)
        if ratio > 0 and not any(counts.values()):
            widths = sorted({structure.group(n).channels for n in scores})
            fix = "a larger ratio" + (" or a smaller round_to (--round-to)" if structure.round_to > 1 else "")
            raise PrunekitError(f"ratio {ratio:g} removes no channel: at widths of {widths[0]}-{widths[-1]} channels "
                                f"with round_to {structure.round_to} no group can lose that share; give {fix}")
    else:
        counts = _counts_for_budget(structure, scores, example_inputs, scope, resource, budget, budget_ratio)
    for name, k in counts.items():
        if k > 0:
            structure.prune(name, lowest(scores[name], k))
    return carry_metadata(model, pruned, structure, example_inputs)


def _counts_for_budget(structure, scores, example_inputs, scope, resource, budget, budget_ratio) -> dict[str, int]:
    cost = make_metric(resource, MetricContext(structure.round_to)).what_if(structure, example_inputs)
    base = cost({})
    target = budget if budget is not None else budget_ratio * base
    if base <= target:
        raise PrunekitError(f"budget {target:.4g} {resource} is not below the model's {base:.4g} {resource}: "
                            "nothing to prune; give a smaller budget")
    if scope == "local":
        steps = 1000
        counts_at = lambda n: local_counts(structure, scores, n / steps * 0.999)  # noqa: E731
        high = steps
    else:
        order = global_order(scores)
        counts_at = lambda n: global_counts(structure, order, n)  # noqa: E731
        high = len(order)
    floor = cost(counts_at(high))
    if floor > target:
        raise PrunekitError(
            f"budget {target:.4g} {resource} is below what this model can reach by pruning "
            f"({floor:.4g} {resource} with every prunable group at its minimum width; the model has {base:.4g})"
        )
    return counts_at(search_budget(lambda n: cost(counts_at(n)) <= target, high))
