"""``prunekit prune``: one-shot channel pruning of a checkpoint folder."""

from __future__ import annotations

import argparse

from prunekit.errors import PrunekitError
from prunekit.cli.options import add_data_args, add_trust_args, add_weights_arg, data_config
from prunekit.pipeline.steps import recorded_data_config
from prunekit.pipeline.prune_step import prune_checkpoint
from prunekit.reports import model_summary_table

NAME = "prune"
HELP = "prune a checkpoint (or a model built by name: --model) one-shot with a criterion, to a ratio or a budget"


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
    src = p.add_mutually_exclusive_group()  # one of them is required (checked in run: a --config may give it)
    src.add_argument("--checkpoint", help="checkpoint folder to prune (left untouched)")
    src.add_argument("--model", help="or build this model by name and prune it: timm:NAME, hf:ARCH|CONFIG, "
                     "ultralytics:NAME.yaml, torchvision:NAME, a zoo name (with --weights FILE for your weights)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="--model's extra argument")
    p.add_argument("--input-shape", nargs="+", type=int, metavar="N",
                   help="--model without --dataset: one input's shape, C H W (or L for token ids); measured in "
                        "resources only")
    p.add_argument("--num-classes", type=int, help="--model without --dataset: number of classes (default: the model's)")
    add_weights_arg(p)
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    p.add_argument("--seed", type=int, help="seed (random criterion, taylor's batches)")
    add_prune_arguments(p)
    add_data_args(p)
    add_trust_args(p)


def _source(args: argparse.Namespace) -> tuple:
    """The model --model names, built for --dataset's data or for --input-shape."""
    from prunekit.cli.cmd_train import parse_model_args
    from prunekit.pipeline.steps import build_source

    if (args.dataset is None) == (not args.input_shape):
        raise PrunekitError("--model needs either --dataset (the data to size and measure it on) or --input-shape C H W")
    data_cfg = data_config(args) if args.dataset else None
    ckpt = build_source(args.model, data_cfg=data_cfg, input_shape=args.input_shape, num_classes=args.num_classes,
                        model_kwargs=parse_model_args(args.model_arg), weights=args.weights)
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
    result = prune_checkpoint(source, args.out, data_cfg=data_cfg, **prune_options(args), overwrite=args.overwrite)
    print(model_summary_table([("before", result["before"]), ("pruned", result["after"])]))
    return 0
