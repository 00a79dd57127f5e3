"""``prunekit train``: train a zoo (or torchvision, or your own) model on a dataset."""

from __future__ import annotations

import argparse
import json

from prunekit.cli.options import (
    add_data_args, add_train_args, add_trust_args, add_weights_arg, data_config, train_config,
)
from prunekit.errors import PrunekitError
from prunekit.pipeline import train_base
from prunekit.reports import model_summary_table

NAME = "train"
HELP = "train a model on a dataset and save a checkpoint folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit train``."""
    p.add_argument("--model", required=True, help="zoo name, torchvision:NAME, timm:NAME, hf:ARCH|CONFIG, "
                   "ultralytics:NAME.yaml, or package.module:function")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model argument (JSON value), e.g. width_mult=0.5; repeatable")
    p.add_argument("--out", required=True, help="checkpoint folder to write (an unfinished run there is resumed)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    add_data_args(p)
    add_train_args(p)
    add_weights_arg(p)
    add_trust_args(p)


def parse_model_args(items: list[str]) -> dict:
    """['width_mult=0.5', 'hidden=128'] -> {'width_mult': 0.5, 'hidden': 128}."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PrunekitError(f"--model-arg expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, save, print the summary."""
    metrics = train_base(
        args.model,
        data_config(args),
        train_config(args),
        args.out,
        model_kwargs=parse_model_args(args.model_arg),
        weights=args.weights,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(model_summary_table([(args.model, metrics)]))
    print(f"test accuracy: {metrics['test_accuracy']:.4f}  (checkpoint: {args.out})")
    return 0
