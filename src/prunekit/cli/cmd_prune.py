"""``prunekit prune``: one-shot channel pruning of a checkpoint folder."""

from __future__ import annotations

import argparse

from prunekit.errors import PrunekitError
from prunekit.cli.options import add_data_args, add_trust_args, data_config
from prunekit.pipeline.steps import recorded_data_config
from prunekit.pipeline.prune_step import prune_checkpoint
from prunekit.reports import model_summary_table

NAME = "prune"
HELP = "prune a checkpoint one-shot with a criterion, to a ratio or a resource budget"


def add_prune_arguments(p: argparse.ArgumentParser, criterion_flag: str = "--criterion") -> None:
    """Options that choose what to prune and how much (shared with ``prunekit run``)."""
    g = p.add_argument_group("pruning")
    g.add_argument(criterion_flag, dest="criterion", help="channel criterion: l1, l2, mean_abs, max_abs, threshold_count, "
                   "bn_scale, taylor, fpgm, random, neuron (default l2)")
    g.add_argument("--ratio", type=float, help="share of channels to remove, in [0, 1)")
    g.add_argument("--budget-ratio", type=float, help="prune until the resource is at most this share of the model's")
    g.add_argument("--budget", type=float, help="prune until the resource is at most this (MACs, FLOPs or parameters)")
    g.add_argument("--resource", choices=("macs", "flops", "params", "latency"),
                   help="resource of the budget (default macs; latency only with NetAdapt)")
    g.add_argument("--scope", choices=("local", "global"), help="each group by the ratio, or rank across groups (default local)")
    g.add_argument("--round-to", type=int, help="keep every pruned width a multiple of N (default 1)")
    g.add_argument("--exclude", nargs="+", default=None, metavar="LAYER", help="layer names to keep whole")
    g.add_argument("--threshold", type=float, help="threshold of threshold_count (default: each layer's mean |w|)")


def prune_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`prune_checkpoint` from parsed options."""
    if args.resource == "latency":
        raise PrunekitError("one-shot pruning budgets macs, flops or params; a latency budget needs NetAdapt "
                            "(prunekit netadapt, or prunekit run --method netadapt)")
    return dict(
        criterion=args.criterion or "l2",
        ratio=args.ratio,
        budget=args.budget,
        budget_ratio=args.budget_ratio,
        resource=args.resource or "macs",
        scope=args.scope or "local",
        round_to=args.round_to or 1,
        exclude=tuple(args.exclude or ()),
        threshold=args.threshold,
        seed=getattr(args, "seed", None) or 0,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit prune``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder to prune (left untouched)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    p.add_argument("--seed", type=int, help="seed (random criterion, taylor's batches)")
    add_prune_arguments(p)
    add_data_args(p)
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Prune, save, print the before/after table."""
    recorded = recorded_data_config(args.checkpoint)
    result = prune_checkpoint(args.checkpoint, args.out, data_cfg=data_config(args, recorded), **prune_options(args),
                              overwrite=args.overwrite)
    print(model_summary_table([("before", result["before"]), ("pruned", result["after"])]))
    return 0
