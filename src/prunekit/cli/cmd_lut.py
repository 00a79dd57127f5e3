"""``prunekit lut``: build a latency lookup table for a checkpoint, or check its prediction against a measurement."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prunekit.cli.options import positive_int
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint
from prunekit.io.output import clean_orphans
from prunekit.cli.cmd_latency import add_platform_arguments, platform_of
from prunekit.latency import LatencyTable, build_lut, measure_latency
from prunekit.latency.table import check_table_path
from prunekit.reports import format_table
from prunekit.cli.options import add_trust_args

NAME = "lut"
HELP = "latency lookup tables: build one for a checkpoint on a platform, or check its predictions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit lut``."""
    p.add_argument("action", choices=("build", "check"),
                   help="build: time every layer at every reachable width (reusing --out if it exists); "
                        "check: predicted against measured latency of checkpoints")
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="DIR", help="checkpoint folder(s)")
    add_platform_arguments(p)
    p.add_argument("--out", help="build: the table's JSON file (extended if it exists)")
    p.add_argument("--lut", help="check: the table's JSON file")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--min-channels-step", type=positive_int, default=8, help="widths are multiples of this (default 8)")
    p.add_argument("--force", "--force-lut", dest="force", action="store_true",
                   help="check: use a table measured on another platform (--force-lut, as netadapt names it)")
    add_trust_args(p)


def _build(args: argparse.Namespace) -> int:
    if not args.out:
        raise PrunekitError("lut build needs --out FILE")
    out = check_table_path(args.out, "--out")
    clean_orphans(out)  # what a killed save left beside it
    platform = platform_of(args)
    # an existing file is read first: a corrupt or foreign one stops here, untouched
    table = LatencyTable.load(out, platform, args.threads) if out.exists() else None
    for directory in args.checkpoint:
        ckpt = load_checkpoint(directory)
        before = len(table.entries) if table else 0
        t0 = time.perf_counter()
        table = build_lut(ckpt.model, ckpt.example_inputs(args.batch_size), platform,
                          min_channels_step=args.min_channels_step, threads=args.threads, table=table,
                          progress=not args.quiet, save_to=out)
        print(f"{directory}: {len(table.entries) - before} layers timed in {time.perf_counter() - t0:.1f} s "
              f"({len(table.entries)} in the table)")
    print(f"saved {out}: {table}")
    return 0


def _check(args: argparse.Namespace) -> int:
    if not args.lut:
        raise PrunekitError("lut check needs --lut FILE")
    check_table_path(args.lut, "--lut")
    table = LatencyTable.load(args.lut, platform_of(args), args.threads, force=args.force)
    rows = []
    for directory in args.checkpoint:
        ckpt = load_checkpoint(directory)
        x = ckpt.example_inputs(args.batch_size)
        if not table.is_calibrated(x):
            table.calibrate(ckpt.model, x, round_to=args.min_channels_step)
        predicted = table.predict(ckpt.model, x)
        real = measure_latency(ckpt.model, x, table.backend, threads=table.threads)
        rows.append([directory, f"{predicted:.3f}", f"{real.median_ms:.3f}", f"{predicted / real.median_ms - 1:+.1%}",
                     f"{real.noise:.1%}"])
    table.save_if_changed()
    print(format_table(rows, ["checkpoint", "predicted ms", "measured ms", "error", "noise (IQR)"]))
    return 0


def run(args: argparse.Namespace) -> int:
    """Build or check."""
    return _build(args) if args.action == "build" else _check(args)
