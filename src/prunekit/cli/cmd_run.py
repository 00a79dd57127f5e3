"""``prunekit run``: the whole pipeline (1 train the base model, 2 prune, 3 fine-tune), any subset of steps."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.cli.cmd_train import parse_model_args
from prunekit.cli.options import add_data_args, add_train_args, data_config, train_config
from prunekit.errors import PrunekitError
from prunekit.io import read_json
from prunekit.pipeline import train_base
from prunekit.reports import model_summary_table

NAME = "run"
HELP = "run the pipeline: 1 train base model, 2 prune, 3 fine-tune (any subset, e.g. --step 123)"
STEP_DIRS = {"1": "base", "2": "pruned", "3": "finetuned"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit run``."""
    p.add_argument("--model", help="zoo name, torchvision:NAME, or package.module:function (step 1)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="extra model argument; repeatable")
    p.add_argument("--out", required=True, help="working folder: base/, pruned/, finetuned/ go inside")
    p.add_argument("--step", default="123", help="which steps to run, e.g. 1, 23, 123 (default 123)")
    p.add_argument("--method", help="pruning criterion (l1, l2, ...) or netadapt (step 2)")
    p.add_argument("--percent", type=float, help="share of channels to remove (step 2)")
    add_data_args(p)
    add_train_args(p, epochs_help="epochs of step 1 (training the base model)")
    p.add_argument("--finetune-epochs", type=float, help="epochs of step 3 (fine-tuning)")


def parse_steps(text: str) -> list[str]:
    """'123' -> ['1', '2', '3']; rejects anything but the digits 1-3."""
    steps = sorted(set(str(text)))
    if not steps or any(s not in STEP_DIRS for s in steps):
        raise PrunekitError(f"--step takes digits 1-3 (e.g. 123, 1, 23), got {text!r}")
    return steps


def run(args: argparse.Namespace) -> int:
    """Run the selected steps, each reading the previous step's folder under ``--out``."""
    out = Path(args.out)
    steps = parse_steps(args.step)
    summary = []
    if "1" in steps:
        if not args.model:
            raise PrunekitError("step 1 needs --model")
        metrics = train_base(args.model, data_config(args), train_config(args), out / STEP_DIRS["1"],
                             model_kwargs=parse_model_args(args.model_arg), progress=not args.quiet)
        summary.append(("base", metrics))
    if "2" in steps or "3" in steps:
        raise PrunekitError("steps 2 and 3 (prune, fine-tune) are not available yet")
    if not summary:
        base = out / STEP_DIRS["1"] / "metrics.json"
        summary.append(("base", read_json(base)))
    print(model_summary_table(summary))
    print(f"test accuracy: {summary[-1][1]['test_accuracy']:.4f}")
    return 0
