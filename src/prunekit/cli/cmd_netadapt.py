"""``prunekit netadapt``: budget-driven iterative channel pruning of a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.algorithms.netadapt import TINYNN_ALIASES, WorkDir
from prunekit.errors import PrunekitError
from prunekit.cli.options import add_data_args, data_config
from prunekit.executors import EXECUTORS, make_executor
from prunekit.io import read_json
from prunekit.latency.platforms import platform_help
from prunekit.latency.timing import CLOCKS
from prunekit.pipeline.steps import recorded_data_config
from prunekit.pipeline.netadapt_step import netadapt_checkpoint
from prunekit.reports import model_summary_table

NAME = "netadapt"
HELP = "adapt a checkpoint to a resource budget with NetAdapt (resumable)"

OPTION_DESTS = ("budget", "budget_ratio", "resource", "init_reduction", "init_reduction_ratio", "reduction_decay",
                "short_term_iters", "finetune_lr", "min_channels_step", "criterion", "exclude", "max_iters",
                "save_interval", "seed", "platform", "latency_mode", "force_lut", "threads",
                "latency_batch", "measure_command", "latency_clock")


def add_netadapt_arguments(p: argparse.ArgumentParser, with_budget: bool = True) -> None:
    """NetAdapt's options (shared with ``prunekit run --method netadapt``)."""
    g = p.add_argument_group("NetAdapt")
    if with_budget:
        g.add_argument("--budget", type=float, help="absolute budget in resource units")
        g.add_argument("--budget-ratio", type=float, help="budget as a share of the model's resource, e.g. 0.5")
        g.add_argument("--resource", choices=("macs", "flops", "params", "latency"), help="resource to budget (default macs)")
        g.add_argument("--criterion", help="which channels a candidate removes (default l2)")
        g.add_argument("--exclude", nargs="+", default=None, metavar="LAYER", help="layer names to keep whole")
    g.add_argument("--init-reduction", type=float, help="first iteration's resource reduction (absolute)")
    g.add_argument("--init-reduction-ratio", type=float, help="first reduction as a share of the resource (default 0.025)")
    g.add_argument("--reduction-decay", type=float, help="each iteration's reduction is the last one times this (default 0.96)")
    g.add_argument("--short-term-iters", type=int, help="batches of short-term fine-tuning per candidate (default 100)")
    g.add_argument("--finetune-lr", dest="finetune_lr", type=float, help="short-term fine-tuning learning rate (default 0.01)")
    g.add_argument("--min-channels-step", type=int, help="channels are removed in multiples of this (default 8)")
    g.add_argument("--max-iters", type=int, help="stop after this many iterations (default 1000)")
    g.add_argument("--save-interval", type=int, help="save every candidate of every N-th iteration (default 0: off)")
    g.add_argument("--work-dir", help="working folder (history, models, resume)")
    g.add_argument("--resume", action="store_true", default=None, help="continue the run in --work-dir")
    lat = p.add_argument_group("latency budget (--resource latency)")
    lat.add_argument("--platform", help=f"where latency is measured: {platform_help()} (default torch-cpu)")
    lat.add_argument("--measure-command", help="--platform command: a command that times {onnx} at batch {batch} on "
                                               "your device and prints its milliseconds (see docs/latency.md)")
    lat.add_argument("--latency-clock", choices=tuple(CLOCKS),
                     help="wall (default) or cpu: CPU time of one thread, steady on a shared machine (docs/latency.md)")
    lat.add_argument("--latency-mode", choices=("lut", "measure"),
                     help="predict candidates from a lookup table (default) or time each one for real")
    lat.add_argument("--lut", help="lookup table JSON: used if it exists, built from the model and saved there if not")
    lat.add_argument("--force-lut", action="store_true", default=None, help="use a table measured on another platform")
    lat.add_argument("--latency-batch", type=int, help="batch size the latency is for (default 1)")
    lat.add_argument("--threads", type=int, help="CPU threads of the latency platform (default: torch's setting)")
    g.add_argument("--executor", choices=EXECUTORS, help="where candidates run: serial (this process) or ray (default serial)")
    g.add_argument("--ray-address", help="ray: 'auto' or HOST:PORT of a running cluster (default: start a local Ray)")
    g.add_argument("--cpus-per-candidate", type=float, help="ray: CPUs per candidate task (default 1)")
    g.add_argument("--gpus-per-candidate", type=float, help="ray: GPUs (or a fraction of one) per candidate task (default 0)")


def netadapt_options(args: argparse.Namespace) -> dict:
    """NetAdapt's settings that were given (None for the rest)."""
    opts = {k: getattr(args, k, None) for k in OPTION_DESTS}
    if opts["exclude"] is not None:
        opts["exclude"] = list(opts["exclude"])
    if getattr(args, "lut", None):
        opts["lut"] = str(Path(args.lut).resolve())  # resuming from another folder still finds it
    return opts


def executor_from_args(args: argparse.Namespace):
    """The executor the options ask for (Ray's options only apply to --executor ray)."""
    name = args.executor or "serial"
    ray_options = {"address": args.ray_address, "cpus_per_candidate": args.cpus_per_candidate,
                   "gpus_per_candidate": args.gpus_per_candidate}
    given = {k: v for k, v in ray_options.items() if v is not None}
    if name != "ray" and given:
        raise PrunekitError(f"{', '.join('--' + k.replace('_', '-') for k in given)} need --executor ray")
    return make_executor(name, **given)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit netadapt``."""
    p.add_argument("--checkpoint", help="checkpoint folder to adapt (not needed with --resume)")
    p.add_argument("--seed", type=int, help="seed of the candidates' fine-tuning (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="short-term fine-tuning batch size (default 64)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    add_netadapt_arguments(p)
    add_data_args(p)
    p.config_aliases = TINYNN_ALIASES


def run(args: argparse.Namespace) -> int:
    """Run or resume, then print the summary."""
    if not args.work_dir:
        raise PrunekitError("--work-dir is required")
    executor = executor_from_args(args)
    recorded = None
    if args.checkpoint:
        recorded = recorded_data_config(args.checkpoint)
    data_cfg = data_config(args, recorded) if recorded or args.dataset else None
    result = netadapt_checkpoint(args.checkpoint, args.work_dir, options=netadapt_options(args), resume=bool(args.resume),
                                 data_cfg=data_cfg, batch_size=args.batch_size, device=args.device,
                                 executor=executor, progress=not args.quiet)
    start = read_json(WorkDir(result.work_dir).iteration_dir(0) / "metrics.json")
    print(model_summary_table([("start", start), ("adapted", result.metrics)]))
    print(f"test accuracy: {result.metrics['test_accuracy']:.4f}  (working folder: {result.work_dir})")
    return 0
