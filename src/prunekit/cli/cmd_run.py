"""``prunekit run``: the whole pipeline (1 train the base model, 2 prune, 3 fine-tune, 4 quantize), any subset of steps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.algorithms.oneshot import PruneConfig
from prunekit.cli.options import (
    add_data_args, add_model_args, add_netadapt_arguments, add_settings, add_train_args, add_trust_args,
    add_weights_arg, executor_from_args, given,
    netadapt_options, parse_model_args, settings_from_args, train_config,
)
from prunekit.criteria import list_criteria
from prunekit.deploy.config import QuantizeConfig
from prunekit.errors import PrunekitError
from prunekit.pipeline.context import DataConfig
from prunekit.pipeline.run import RunPlan, parse_steps, run_pipeline
from prunekit.reports import metric_of, model_summary_table
from prunekit.settings import check_finite
from prunekit.training.config import DEFAULT_BATCH_SIZE

NAME = "run"
HELP = "run the pipeline: 1 train base model, 2 prune, 3 fine-tune, 4 quantize to int8 (any subset, e.g. --step 123)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit run``."""
    add_model_args(p)
    p.add_argument("--out", required=True, help="working folder: base/, pruned/, finetuned/, quantized/ go inside")
    p.add_argument("--overwrite", action="store_true", help="replace step folders that already exist under --out")
    p.add_argument("--step", default="123", help="which steps to run, e.g. 1, 23, 123, 1234 (default 123)")
    p.add_argument("--method", choices=["netadapt", *list_criteria()], metavar="METHOD",
                   help="step 2: netadapt, or a one-shot criterion (default l2)")
    p.add_argument("--percent", type=float,
                   help="step 2: how much to prune: for a one-shot criterion the share of channels removed from "
                        "every group (as --ratio); for netadapt the share of the resource removed (budget 1 - R)")
    add_settings(p, PruneConfig, "pruning (one-shot)", skip=("criterion",))
    add_netadapt_arguments(p)
    add_data_args(p)
    add_train_args(p)
    g = p.add_argument_group("step 3 (long-term fine-tuning)")
    g.add_argument("--finetune-epochs", type=float, help="epochs of step 3 (default 10)")
    g.add_argument("--longterm-lr", type=float, help="learning rate of step 3 (default 0.01)")
    g.add_argument("--teacher", help="step 3 distils from this checkpoint (e.g. OUT/base)")
    add_settings(p, QuantizeConfig, "step 4 (int8 quantization with ONNX Runtime; timed at --latency-batch with "
                                     "--threads, as NetAdapt's latency is: batch 1 and torch's threads by default)")
    add_weights_arg(p)
    add_trust_args(p)


def _budget(args: argparse.Namespace, netadapt: bool) -> None:
    """--percent: a ratio for a criterion, a budget of 1 - R for NetAdapt."""
    if args.percent is None:
        return
    if not 0 < args.percent < 1:
        raise PrunekitError(f"--percent must be in (0, 1), got {args.percent}")
    if netadapt and args.budget_ratio is None and args.budget is None:
        args.budget_ratio = 1 - args.percent
    elif not netadapt:
        if args.ratio is not None and args.ratio != args.percent:
            raise PrunekitError("--percent and --ratio say the same thing: give one")
        args.ratio = args.percent


def _netadapt_settings(args: argparse.Namespace, method: str) -> dict:
    """NetAdapt's given settings, checked whatever the method (a wrong value in a config is refused now, not
    found by a later NetAdapt run); with a one-shot method, those only NetAdapt reads are named as unused."""
    opts = netadapt_options(args)
    cfg = NetAdaptConfig().with_changes(**opts)
    cfg.validate_settings()
    if method == "netadapt":
        if "2" in parse_steps(args.step):
            cfg.validate()  # the budget too: before step 1 trains
        return opts
    shared = {*PruneConfig.field_names(), *DataConfig.field_names(), *type(train_config(args)).field_names(),
              *QuantizeConfig.field_names(), "threads", "latency_batch"}  # step 4 times at --threads, --latency-batch
    shared.discard("criterion")  # run's --criterion is NetAdapt's: a one-shot step's criterion is --method
    unused = sorted(k for k in opts if k not in shared and not (k == "criterion" and opts[k] == method))
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        verb = "applies" if len(unused) == 1 else "apply"
        hint = f" (its criterion is --method: --method {opts['criterion']})" if "criterion" in unused else ""
        print(f"note: {flags} only {verb} to --method netadapt: step 2 ({method}) does not use "
              f"{'it' if len(unused) == 1 else 'them'}{hint}", file=sys.stderr)
    return {}


def plan_from_args(args: argparse.Namespace) -> RunPlan:
    """The pipeline run the options describe (checked before any work)."""
    steps = parse_steps(args.step)
    method = args.method or "l2"
    netadapt = method == "netadapt"
    _budget(args, netadapt)
    if "2" in steps and args.ratio is None and args.budget is None and args.budget_ratio is None:
        raise PrunekitError("step 2 needs --percent (or --ratio, --budget-ratio, --budget)")
    # --criterion is NetAdapt's flag: a one-shot step's criterion is --method, whatever --criterion says
    prune = settings_from_args(PruneConfig, args).replace(criterion=method) if not netadapt else PruneConfig()
    if "2" in steps and not netadapt:
        prune.validate()  # before step 1 trains
    step3 = {k: v for k, v in (("epochs", args.finetune_epochs), ("lr", args.longterm_lr)) if v is not None}
    for (key, value), flag in zip(step3.items(), ("--finetune-epochs", "--longterm-lr")):
        check_finite(value, flag)
        if value <= 0:
            raise PrunekitError(f"{flag} must be above 0, got {value:g}")
    train_given = given(type(train_config(args)), args)
    return RunPlan(
        out=Path(args.out), steps=steps, model=args.model, model_kwargs=parse_model_args(args.model_arg),
        weights=args.weights,
        data_given=given(DataConfig, args), train=train_config(args), method=method, prune=prune,
        netadapt_options=_netadapt_settings(args, method), work_dir=Path(args.work_dir) if args.work_dir else None,
        executor=executor_from_args(args),
        finetune_given={**{k: v for k, v in train_given.items() if k not in ("epochs", "lr", "sparsity")}, **step3},
        teacher=args.teacher, quantize=settings_from_args(QuantizeConfig, args),
        quantize_batch=args.latency_batch or 1, quantize_threads=args.threads,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE, device=args.device or "cpu",
        overwrite=args.overwrite, resume=bool(args.resume), progress=not args.quiet)


def run(args: argparse.Namespace) -> int:
    """Run the selected steps, each reading the previous step's folder under ``--out``."""
    summary = run_pipeline(plan_from_args(args))
    print(model_summary_table(summary))
    print(f"test {metric_of(summary[-1][1])}: {summary[-1][1]['test_accuracy']:.4f}")
    return 0
