"""``prunekit eval``: re-measure a checkpoint folder on its data."""

from __future__ import annotations

import argparse

from prunekit.cli.options import add_data_args, add_trust_args, data_config
from prunekit.pipeline import evaluate_checkpoint
from prunekit.pipeline.steps import recorded_data_config
from prunekit.reports import metric_of, model_summary_table

NAME = "eval"
HELP = "evaluate a checkpoint folder: test/validation accuracy, MACs, params"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit eval``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--device", help="cpu or cuda (default cpu)")
    add_data_args(p)
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Load, evaluate, print."""
    recorded = recorded_data_config(args.checkpoint)
    metrics = evaluate_checkpoint(args.checkpoint, data_config(args, recorded), args.device or "cpu")
    print(model_summary_table([(str(args.checkpoint), metrics)]))
    print(f"test {metric_of(metrics)}: {metrics['test_accuracy']:.4f}")
    return 0
