"""``prunekit prune``: one-shot channel pruning of a checkpoint folder."""

from __future__ import annotations

import argparse

from prunekit.algorithms.oneshot import PruneConfig
from prunekit.cli.options import add_data_args, add_settings, data_config, settings_from_args
from prunekit.pipeline.prune_step import prune_checkpoint
from prunekit.pipeline.steps import recorded_data_config
from prunekit.reports import model_summary_table

NAME = "prune"
HELP = "prune a checkpoint one-shot with a criterion, to a ratio or a resource budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit prune``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder to prune (left untouched)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    add_settings(p, PruneConfig, "pruning")
    add_data_args(p)


def run(args: argparse.Namespace) -> int:
    """Prune, save, print the before/after table."""
    recorded = recorded_data_config(args.checkpoint)
    cfg = settings_from_args(PruneConfig, args)
    result = prune_checkpoint(args.checkpoint, args.out, cfg, data_cfg=data_config(args, recorded),
                              overwrite=args.overwrite)
    print(model_summary_table([("before", result["before"]), ("pruned", result["after"])]))
    return 0
