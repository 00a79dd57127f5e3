"""``prunekit train``: train a zoo (or torchvision, or your own) model on a dataset."""

from __future__ import annotations

import argparse

from prunekit.cli.options import (
    add_data_args, add_model_args, add_train_args, add_trust_args, add_weights_arg, data_config, parse_model_args,
    train_config,
)
from prunekit.errors import PrunekitError
from prunekit.pipeline import train_base
from prunekit.reports import metric_of, model_summary_table

NAME = "train"
HELP = "train a model on a dataset and save a checkpoint folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit train``."""
    add_model_args(p)
    p.add_argument("--out", required=True, help="checkpoint folder to write (an unfinished run there is resumed)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    add_data_args(p)
    add_train_args(p)
    add_weights_arg(p)
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, save, print the summary."""
    if not args.model:
        raise PrunekitError("--model is required (a zoo name, torchvision:NAME, timm:NAME, hf:ARCH, "
                            "ultralytics:NAME.yaml or package.module:function)")
    metrics = train_base(args.model, data_config(args), train_config(args), args.out,
                         model_kwargs=parse_model_args(args.model_arg), weights=args.weights,
                         progress=not args.quiet, overwrite=args.overwrite)
    print(model_summary_table([(args.model, metrics)]))
    print(f"test {metric_of(metrics)}: {metrics['test_accuracy']:.4f}  (checkpoint: {args.out})")
    return 0
