"""``prunekit run``: the whole pipeline (1 train the base model, 2 prune, 3 fine-tune), any subset of steps."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from prunekit.algorithms.netadapt import WorkDir
from prunekit.cli.cmd_finetune import FINETUNE_DEFAULTS
from prunekit.cli.cmd_netadapt import add_netadapt_arguments, executor_from_args, netadapt_options
from prunekit.cli.cmd_prune import add_prune_arguments, prune_options
from prunekit.cli.cmd_train import parse_model_args
from prunekit.cli.options import (
    add_data_args, add_train_args, add_trust_args, add_weights_arg, data_config, train_config,
)
from prunekit.errors import PrunekitError
from prunekit.io import read_description, read_json, write_json
from prunekit.io.output import check_output, occupied, publish, set_aside, staging_dir
from prunekit.pipeline import DataConfig, train_base
from prunekit.pipeline.steps import recorded_data_config
from prunekit.pipeline.netadapt_step import netadapt_checkpoint
from prunekit.pipeline.prune_step import finetune_checkpoint, prune_checkpoint
from prunekit.reports import model_summary_table
from prunekit.training import TrainConfig

NAME = "run"
HELP = "run the pipeline: 1 train base model, 2 prune, 3 fine-tune (any subset, e.g. --step 123)"
STEP_DIRS = {"1": "base", "2": "pruned", "3": "finetuned"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit run``."""
    p.add_argument("--model", help="zoo name, torchvision:NAME, timm:NAME, hf:ARCH|CONFIG, ultralytics:NAME.yaml, "
                   "or package.module:function (step 1)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="extra model argument; repeatable")
    p.add_argument("--out", required=True, help="working folder: base/, pruned/, finetuned/ go inside")
    p.add_argument("--overwrite", action="store_true", help="replace step folders that already exist under --out")
    p.add_argument("--step", default="123", help="which steps to run, e.g. 1, 23, 123 (default 123)")
    p.add_argument("--percent", type=float,
                   help="step 2: how much to prune: for a one-shot criterion the share of channels removed from "
                        "every group (as --ratio); for netadapt the share of the resource removed (budget 1 - R)")
    add_prune_arguments(p, criterion_flag="--method")
    add_netadapt_arguments(p, with_budget=False)
    add_data_args(p)
    add_train_args(p, epochs_help="epochs of step 1 (training the base model)")
    p.add_argument("--finetune-epochs", type=float, help="epochs of step 3 (default: the same as --epochs)")
    p.add_argument("--longterm-lr", type=float, help="learning rate of step 3, the long-term fine-tuning (default 0.01)")
    add_weights_arg(p)
    add_trust_args(p)


def parse_steps(text: str) -> list[str]:
    """'123' -> ['1', '2', '3']; rejects anything but the digits 1-3."""
    steps = sorted(set(str(text)))
    if not steps or any(s not in STEP_DIRS for s in steps):
        raise PrunekitError(f"--step takes digits 1-3 (e.g. 123, 1, 23), got {text!r}")
    return steps


def _need(folder: Path, step: str) -> Path:
    if not (folder / "model.json").is_file():
        raise PrunekitError(f"step {step} needs {folder} from the previous step: run it first (e.g. --step {int(step) - 1}{step})")
    return folder


def _netadapt_step(args: argparse.Namespace, src: Path, out: Path, dest: Path, data_cfg: DataConfig, executor) -> dict:
    """NetAdapt in ``out/netadapt``; its final network becomes ``dest`` (the pruned/ folder)."""
    options = netadapt_options(args)
    options.update(criterion="l2", budget=args.budget, budget_ratio=args.budget_ratio,
                   resource=args.resource, exclude=list(args.exclude) if args.exclude else None)
    work_dir = Path(args.work_dir) if args.work_dir else out / "netadapt"
    replaced = None
    if not args.resume:
        check_output(work_dir, args.overwrite, "--work-dir")
        if occupied(work_dir):  # --overwrite: set the old run aside, delete it once the new one is done
            replaced = set_aside(work_dir)
    check_output(dest, args.overwrite or bool(args.resume))
    result = netadapt_checkpoint(src, work_dir, options=options, resume=bool(args.resume), data_cfg=data_cfg,
                                 batch_size=args.batch_size or 64, device=args.device or "cpu",
                                 executor=executor, progress=not args.quiet)
    final = WorkDir(work_dir).iteration_dir(len(result.history))
    stage = staging_dir(dest)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(final, stage)
    write_json(stage / "metrics.json", result.metrics)
    publish(stage, dest, overwrite=True)  # checked above: dest is new, or --overwrite/--resume replaces it
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    return result.metrics


def run(args: argparse.Namespace) -> int:
    """Run the selected steps, each reading the previous step's folder under ``--out``."""
    out = Path(args.out)
    steps = parse_steps(args.step)
    dirs = {k: out / v for k, v in STEP_DIRS.items()}
    netadapt = (args.criterion or "l2") == "netadapt"
    executor = executor_from_args(args)  # bad executor options fail before any work
    if args.percent is not None:
        if not 0 < args.percent < 1:
            raise PrunekitError(f"--percent must be in (0, 1), got {args.percent}")
        if netadapt and args.budget_ratio is None and args.budget is None:
            args.budget_ratio = 1 - args.percent
        elif not netadapt:
            if args.ratio is not None and args.ratio != args.percent:
                raise PrunekitError("--percent and --ratio say the same thing: give one")
            args.ratio = args.percent
    if "2" in steps and args.ratio is None and args.budget is None and args.budget_ratio is None:
        raise PrunekitError("step 2 needs --percent (or --ratio, --budget-ratio, --budget)")
    summary = []
    if "1" in steps:
        if not args.model:
            raise PrunekitError("step 1 needs --model")
        metrics = train_base(args.model, data_config(args), train_config(args), dirs["1"],
                             model_kwargs=parse_model_args(args.model_arg), weights=args.weights,
                             progress=not args.quiet,
                             overwrite=args.overwrite)
        summary.append(("base", metrics))
    if "2" in steps:
        src = _need(dirs["1"], "2")
        if not summary:
            summary.append(("base", read_json(src / "metrics.json")))
        recorded = recorded_data_config(src)
        if netadapt:
            summary.append(("netadapt", _netadapt_step(args, src, out, dirs["2"], data_config(args, recorded), executor)))
        else:
            result = prune_checkpoint(src, dirs["2"], data_cfg=data_config(args, recorded), **prune_options(args),
                                      overwrite=args.overwrite)
            summary.append(("pruned", result["after"]))
    if "3" in steps:
        src = _need(dirs["2"], "3")
        if not summary:
            summary.append(("pruned", read_json(src / "metrics.json")))
        meta = read_description(src).get("meta", {})
        cfg = train_config(args, TrainConfig.from_dict(meta.get("train", {})))
        # --lr and --epochs belong to step 1; step 3 has its own (defaulting to the same epochs)
        cfg.lr = args.longterm_lr if args.longterm_lr is not None else FINETUNE_DEFAULTS["lr"]
        cfg.sparsity = FINETUNE_DEFAULTS["sparsity"]  # --sparsity shapes step 1 (network slimming), not step 3
        if args.finetune_epochs is not None:
            cfg.epochs = args.finetune_epochs
        result = finetune_checkpoint(src, dirs["3"], cfg, data_cfg=data_config(args, recorded_data_config(src)),
                                     progress=not args.quiet, overwrite=args.overwrite)
        summary.append(("fine-tuned", result["after"]))
    print(model_summary_table(summary))
    print(f"test accuracy: {summary[-1][1]['test_accuracy']:.4f}")
    return 0
