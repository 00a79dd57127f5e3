"""Torch-Pruning's pruners as peers of NetAdapt, their networks saved as prunekit checkpoints.

Torch-Pruning (TP) prunes the loaded base in place, stepped until prunekit's MACs count meets the
budget. Its pruning history (TP's own way to save a pruned network: layer, side, indices) is then
replayed on prunekit's structure of the base, and the replayed network must equal TP's tensor for
tensor: it is saved as an ordinary prunekit checkpoint (weights and a pruning plan, no pickle), so
that ``prunekit finetune`` fine-tunes it exactly like every other method's network.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from prunekit.algorithms.oneshot import accumulate_gradients
from prunekit.data import DataBundle, batches
from prunekit.io import load_checkpoint, save_checkpoint
from prunekit.pipeline.steps import model_metrics
from prunekit.resources import measure
from prunekit.structure import Member, ModelStructure, analyze

TAYLOR_BATCH = 64


def training_batches(data: DataBundle, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches, epoch after epoch, in a fixed order for ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield from batches(data.train, TAYLOR_BATCH, shuffle=True, generator=gen)


def prune_to_budget(model: nn.Module, x: torch.Tensor, budget_macs: float, taylor: bool, steps: int,
                    feed: Iterator | None, taylor_batches: int) -> tuple[Any, int]:
    """TP's ``MagnitudePruner`` with L2 magnitude (or Taylor) importance, global ranking, classifier kept whole,
    stepped until prunekit's MACs count meets the budget; prunes ``model`` in place. Returns the pruner and the
    steps taken."""
    import torch_pruning as tp

    importance = tp.importance.TaylorImportance() if taylor else tp.importance.MagnitudeImportance(p=2)
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    pruner = tp.pruner.MagnitudePruner(model, x, importance=importance, global_pruning=True, pruning_ratio=0.9,
                                       iterative_steps=steps, ignored_layers=[classifier])
    taken = 0
    while measure(model, x).macs > budget_macs and taken < steps:
        if taylor:
            accumulate_gradients(model, feed, taylor_batches)
        pruner.step()
        taken += 1
    model.zero_grad(set_to_none=True)
    return pruner, taken


def replay(base: nn.Module, x: torch.Tensor, history: list) -> ModelStructure:
    """TP's pruning history (root layer, output side or not, its indices at that moment) replayed on prunekit's
    structure of a copy of ``base``: the same channels removed, group by group, in the same order."""
    s = analyze(copy.deepcopy(base), x)
    for layer, is_out, indices in history:
        role = "out" if is_out else "in"
        group = next((g for g in s.groups if Member(layer, role) in g.members), None)
        if group is None:
            raise SystemExit(f"Torch-Pruning pruned {layer} ({role}), which no prunekit group holds")
        channel_at: dict[int, int] = {}
        for sl in s.slices(group.name):
            if sl.layer == layer and sl.role == role:
                for channel, positions in zip(sl.channels.tolist(), sl.index.tolist()):
                    channel_at.update({p: channel for p in positions if p not in channel_at})
        s.prune(group.name, sorted({channel_at[i] for i in indices}))
    return s


def check_identical(ours: nn.Module, theirs: nn.Module) -> None:
    """Stop unless both networks hold the same tensors under the same names."""
    a, b = ours.state_dict(), theirs.state_dict()
    bad = [k for k in a.keys() | b.keys() if k not in a or k not in b or a[k].shape != b[k].shape
           or not torch.equal(a[k], b[k])]
    if bad:
        raise SystemExit(f"prunekit's replay of Torch-Pruning's history differs from TP's network at {sorted(bad)[:5]}")


def save_tp_network(base_folder: Path, out: Path, taylor: bool, budget_ratio: float, seed: int, data: DataBundle,
                    steps: int, taylor_batches: int) -> float:
    """Prune the base at ``base_folder`` with TP to ``budget_ratio`` of its MACs and save the result at ``out`` as a
    prunekit checkpoint (TP's settings and steps in its ``meta["prune"]``); returns TP's own seconds."""

    ckpt = load_checkpoint(base_folder)
    model, x = copy.deepcopy(ckpt.model), ckpt.example_inputs(1)
    budget = budget_ratio * measure(model, x).macs
    torch.manual_seed(seed)
    feed = training_batches(data, seed) if taylor else None
    t0 = time.perf_counter()
    pruner, taken = prune_to_budget(model, x, budget, taylor, steps, feed, taylor_batches)
    seconds = time.perf_counter() - t0
    structure = replay(ckpt.model, x, pruner.pruning_history())
    check_identical(structure.model, model)
    metrics = model_metrics(structure.model, data)
    prune = {"tool": "torch-pruning", "importance": "taylor" if taylor else "magnitude-l2", "global": True,
             "iterative_steps": steps, "steps": taken, "taylor_batches": taylor_batches if taylor else None,
             "budget_ratio": budget_ratio, "seed": seed, "reached_budget": metrics["macs"] <= budget}
    save_checkpoint(out, structure.model.eval(), spec=ckpt.spec, input_shape=ckpt.input_shape,
                    plan=structure.plan.to_dict(), metrics=metrics,
                    meta={**ckpt.meta, "parent": str(base_folder), "prune": prune})
    return seconds
