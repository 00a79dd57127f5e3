"""``prunekit netadapt``: budget-driven iterative channel pruning of a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.cli.options import (
    add_data_args, add_netadapt_arguments, add_trust_args, data_config, executor_from_args, given, netadapt_options,
    positive_int,
)
from prunekit.errors import PrunekitError
from prunekit.io import read_json
from prunekit.pipeline.netadapt_step import netadapt_checkpoint
from prunekit.pipeline.steps import recorded_data_config
from prunekit.pipeline.workdir import WorkDir
from prunekit.reports import human, metric_of, model_summary_table
from prunekit.training.config import DEFAULT_BATCH_SIZE

NAME = "netadapt"
HELP = "adapt a checkpoint to a resource budget with NetAdapt (resumable)"
MISSED_BUDGET = 3
"""Exit status of a run that ended above its budget (as measured, or because no candidate could reach the
next target): the network is saved, but it is not what was asked for. A run stopped by --max-iters exits 0."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit netadapt``."""
    p.add_argument("--checkpoint", help="checkpoint folder to adapt (not needed with --resume)")
    p.add_argument("--out", help="also write the final network as a checkpoint folder here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --work-dir / --out if they already hold something (without --resume)")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                   help=f"short-term fine-tuning batch size (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--device", help="cpu or cuda (default cpu)")
    add_netadapt_arguments(p)
    add_data_args(p)
    add_trust_args(p)


def budget_is_ratio(work_dir: Path) -> bool:
    """Whether the run's budget is a share of the start network's resource (--budget-ratio)."""
    return WorkDir(work_dir).config()["netadapt"].get("budget") is None


def miss_advice(work_dir: Path) -> str:
    """What to do about a latency budget missed as measured at the end, for the run's latency mode."""
    mode = (WorkDir(work_dir).config()["netadapt"].get("latency") or {}).get("latency_mode")
    if mode == "measure":  # every candidate was timed: the final check read slower than the search's own timings
        return ("the search's timings read faster than the final check (a busy machine?): resume with a smaller "
                "--budget, or run again on a quiet machine")
    return "resume with a smaller --budget, or use --latency-mode measure"


def _within_noise(m: dict, work_dir: Path) -> str:
    """Says so when a latency missed by less than its own timing's spread (the middle half of its runs)."""
    noise = m.get("latency_measured_noise")
    if "latency_measured_ratio" in m and budget_is_ratio(work_dir):
        miss = m["latency_measured_ratio"] / (m["budget"] / m["base_resource"]) - 1
    else:
        miss = m["latency_measured_ms"] / m["budget"] - 1
    if not noise or miss > noise:
        return ""
    return f"; over by {miss:.1%}, within the timing's noise: the middle half of its runs spread over {noise:.0%}"


def report(result, work_dir: Path) -> int:
    """Print the summary; the exit status says whether the budget was met (as measured, for latency)."""
    start = read_json(WorkDir(work_dir).iteration_dir(0) / "metrics.json")
    m = result.metrics
    print(model_summary_table([("start", start), ("adapted", m)]))
    print(f"test {metric_of(m)}: {m['test_accuracy']:.4f}  (working folder: {work_dir})")
    resource = WorkDir(work_dir).config()["netadapt"]["resource"]
    if resource != "latency" and m.get(resource) is not None:
        met = "met" if m[resource] <= m["budget"] else "NOT met"
        print(f"{resource} measured: {human(m[resource])} ({m[resource] / m['base_resource']:.1%} of the start) "
              f"against a budget of {human(m['budget'])}: {met}")
    measured = m.get("latency_measured_ms")
    if measured is not None:
        predicted = f" (predicted {m['latency_predicted_ms']:.3f} ms)" if "latency_predicted_ms" in m else ""
        print(f"latency measured: {measured:.3f} ms against a budget of {m['budget']:.3f} ms{predicted}")
        if "latency_measured_ratio" in m:
            print(f"  {m['latency_measured_ratio']:.1%} of the start network's {m['base_latency_measured_ms']:.3f} ms "
                  "measured alongside it")
    if not m.get("reached_budget", True):
        stopped = str(m.get("stopped", "stopped early"))
        advice = ("at these widths it cannot be reached: give a larger budget" if "no group's cut lowers" in stopped
                  else "continue with --resume")
        print(f"the budget is NOT met yet: {stopped} ({advice})")
        return 0 if str(m.get("stopped", "")).startswith("max_iters") else MISSED_BUDGET
    if measured is not None and not m.get("met_as_measured", measured <= m["budget"]):
        share = (f"{m['latency_measured_ratio']:.1%} of the start's latency against {m['budget'] / m['base_resource']:.0%}"
                 if "latency_measured_ratio" in m and budget_is_ratio(work_dir) else f"{measured / m['budget']:.1%} of it")
        print(f"the budget is NOT met as measured ({share}{_within_noise(m, work_dir)}): {miss_advice(work_dir)}")
        return MISSED_BUDGET
    return 0


def run(args: argparse.Namespace) -> int:
    """Run or resume, then print the summary."""
    if not args.work_dir:
        raise PrunekitError("--work-dir is required")
    executor = executor_from_args(args)
    recorded = recorded_data_config(args.checkpoint) if args.checkpoint else None
    data_given = given(type(recorded) if recorded else data_config(args).__class__, args)
    data_cfg = data_config(args, recorded) if recorded is not None or data_given else None
    if args.resume and WorkDir(args.work_dir).exists() and not data_given:
        data_cfg = None  # the run's own data
    result = netadapt_checkpoint(args.checkpoint, args.work_dir, options=netadapt_options(args),
                                 resume=bool(args.resume), data_cfg=data_cfg, batch_size=args.batch_size,
                                 device=args.device or "cpu", executor=executor, progress=not args.quiet,
                                 out=args.out, overwrite=args.overwrite)
    return report(result, Path(args.work_dir))
