"""``prunekit finetune``: fine-tune a (pruned) checkpoint, optionally distilling from the unpruned model."""

from __future__ import annotations

import argparse

from prunekit.cli.options import add_data_args, add_train_args, add_trust_args, data_config, train_config
from prunekit.io import read_description
from prunekit.pipeline import DataConfig
from prunekit.pipeline.prune_step import finetune_checkpoint
from prunekit.pipeline.run import FINETUNE_DEFAULTS
from prunekit.reports import metric_of, model_summary_table
from prunekit.training import TrainConfig

NAME = "finetune"
HELP = "fine-tune a checkpoint (e.g. a pruned one); --teacher distils from another"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit finetune``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder to fine-tune (left untouched)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (an unfinished run there is resumed)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    p.add_argument("--teacher", help="checkpoint folder of a teacher (e.g. the unpruned model) to distil from")
    add_data_args(p)
    add_train_args(p, defaults=FINETUNE_DEFAULTS)
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Fine-tune, save, print the before/after table."""
    desc = read_description(args.checkpoint).get("meta", {})
    recorded = DataConfig.recorded(desc.get("data"), f"{args.checkpoint}/model.json: meta.data")
    base = TrainConfig.recorded(desc.get("train"), f"{args.checkpoint}/model.json: meta.train")
    cfg = train_config(args, base, **FINETUNE_DEFAULTS)
    result = finetune_checkpoint(args.checkpoint, args.out, cfg, teacher=args.teacher,
                                 data_cfg=data_config(args, recorded), progress=not args.quiet,
                                 overwrite=args.overwrite)
    print(model_summary_table([("before", result["before"]), ("fine-tuned", result["after"])]))
    print(f"test {metric_of(result['after'])}: {result['after']['test_accuracy']:.4f}")
    return 0
