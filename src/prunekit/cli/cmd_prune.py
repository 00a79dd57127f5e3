"""``prunekit prune``: one-shot channel pruning of a checkpoint folder."""

from __future__ import annotations

import argparse

from prunekit.algorithms.oneshot import PruneConfig
from prunekit.cli.options import (
    add_data_args, add_settings, add_trust_args, add_weights_arg, data_config, parse_model_args, positive_int,
    settings_from_args,
)
from prunekit.errors import PrunekitError
from prunekit.resources.metric import RESOURCES
from prunekit.pipeline.prune_step import prune_checkpoint
from prunekit.pipeline.steps import recorded_data_config
from prunekit.reports import human, model_summary_table

NAME = "prune"
HELP = "prune a checkpoint (or a model built by name: --model) one-shot with a criterion, to a ratio or a budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit prune``."""
    src = p.add_mutually_exclusive_group()  # one of them is required (checked in run: a --config may give it)
    src.add_argument("--checkpoint", help="checkpoint folder to prune (left untouched)")
    src.add_argument("--model", help="or build this model by name and prune it: timm:NAME, hf:ARCH|CONFIG, "
                     "ultralytics:NAME.yaml, torchvision:NAME, a zoo name (with --weights FILE for your weights)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="--model's extra argument")
    p.add_argument("--input-shape", nargs="+", type=positive_int, metavar="N",
                   help="--model without --dataset: one input's shape, C H W (or L for token ids); measured in "
                        "resources only")
    p.add_argument("--num-classes", type=positive_int,
                   help="--model without --dataset: number of classes (default: the model's)")
    add_weights_arg(p)
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    add_settings(p, PruneConfig, "pruning")
    add_data_args(p)
    add_trust_args(p)


def _source(args: argparse.Namespace) -> tuple:
    """The model --model names, built for --dataset's data or for --input-shape."""
    from prunekit.pipeline.steps import build_source

    if args.dataset is not None and args.input_shape:
        raise PrunekitError("--model takes --dataset (the data to size and measure it on) or --input-shape C H W, "
                            "not both")
    if args.dataset is None and not args.input_shape:
        raise PrunekitError("--model needs either --dataset (the data to size and measure it on) or --input-shape C H W")
    data_cfg = data_config(args) if args.dataset else None
    ckpt = build_source(args.model, data_cfg=data_cfg, input_shape=args.input_shape, num_classes=args.num_classes,
                        model_kwargs=parse_model_args(args.model_arg), weights=args.weights,
                        seed=args.seed if args.seed is not None else 0)
    return ckpt, data_cfg


def run(args: argparse.Namespace) -> int:
    """Prune, save, print the before/after table."""
    if not args.model and not args.checkpoint:
        raise PrunekitError("prune needs --checkpoint FOLDER, or --model NAME to build the model to prune")
    if args.model:
        source, data_cfg = _source(args)
    else:
        if args.weights or args.input_shape or args.model_arg or args.num_classes:
            raise PrunekitError("--weights, --model-arg, --input-shape and --num-classes go with --model, not --checkpoint")
        source, data_cfg = args.checkpoint, data_config(args, recorded_data_config(args.checkpoint))
    cfg = settings_from_args(PruneConfig, args)
    result = prune_checkpoint(source, args.out, cfg, data_cfg=data_cfg, overwrite=args.overwrite)
    before, after = result["before"], result["after"]
    print(model_summary_table([("before", before), ("pruned", after)]))
    res = RESOURCES.canonical(cfg.resource) if cfg.ratio is None else "macs"  # the figures' name, not an alias
    accuracy = f"test accuracy: {after['test_accuracy']:.4f}, " if "test_accuracy" in after else ""
    print(f"{accuracy}{res} {human(after[res])} ({after[res] / before[res]:.1%} of the model's)  "
          f"(checkpoint: {args.out})")
    return 0
