"""``prunekit latency``: measured latency of a checkpoint on a platform, and which layers cost the most."""

from __future__ import annotations

import argparse

from prunekit.cli.options import add_trust_args, positive_int
from prunekit.io import load_checkpoint
from prunekit.latency import Platform, get_platform, layer_costs, measure_latency, platform_help
from prunekit.latency.timing import CLOCKS
from prunekit.reports import format_table

NAME = "latency"
HELP = "measure a checkpoint's latency on a platform and show its most expensive layers"


def add_platform_arguments(p: argparse.ArgumentParser) -> None:
    """``--platform``, ``--measure-command`` and ``--threads`` (shared by ``latency`` and ``lut``)."""
    p.add_argument("--platform", default="torch-cpu", help=f"{platform_help()} (default torch-cpu)")
    p.add_argument("--measure-command", metavar="CMD",
                   help="--platform command: a command that times the ONNX file {onnx} at batch {batch} on your "
                        "device and prints its milliseconds ('latency_ms: X'); results are cached (docs/latency.md)")
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: torch's setting)")
    p.add_argument("--clock", choices=tuple(CLOCKS), help="wall (default) or cpu: CPU time of one thread, steady on "
                                                          "a machine shared with other jobs (docs/latency.md)")


def platform_of(args: argparse.Namespace) -> Platform:
    """The platform the options name (an unknown name or a missing runtime is one clear error)."""
    return get_platform(args.platform, command=getattr(args, "measure_command", None), clock=getattr(args, "clock", None))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit latency``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    add_platform_arguments(p)
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--top", type=positive_int, default=15, help="how many layers to list (default 15)")
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Measure the whole network, then rank its layers."""
    platform = platform_of(args)
    ckpt = load_checkpoint(args.checkpoint)
    x = ckpt.example_inputs(args.batch_size)
    result = measure_latency(ckpt.model, x, platform, threads=args.threads)
    print(f"{args.checkpoint}: {result}")
    rec = result.platform
    print("platform: " + ", ".join(f"{k} {v}" for k, v in rec.items() if k != "name"))
    rows = [[r["layer"], r["type"], f"{r['ms']:.4f}", f"{r['share']:.1%}"] for r in layer_costs(ckpt.model, x, threads=args.threads)]
    print(f"\nmost expensive layers (torch on the CPU, batch {args.batch_size}):")
    print(format_table(rows[: args.top], ["layer", "type", "ms / pass", "share"]))
    return 0
