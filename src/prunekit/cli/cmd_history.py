"""``prunekit history``: the trade-off table of a NetAdapt run and a plot of accuracy against resource."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.io.output import check_file_output
from prunekit.pipeline.workdir import WorkDir
from prunekit.reports import format_table, human, plot_tradeoff
from prunekit.resources.metric import resource_label

NAME = "history"
HELP = "show a NetAdapt run's iterations (table) and plot accuracy (or the run's metric) against resource (PNG)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit history``."""
    p.add_argument("work_dir", help="NetAdapt working folder")
    p.add_argument("--plot", help="PNG to write (default WORK_DIR/tradeoff.png, replaced each time)")
    p.add_argument("--overwrite", action="store_true", help="replace --plot if it exists")


def run(args: argparse.Namespace) -> int:
    """Print the table, write the plot."""
    if args.plot:
        check_file_output(args.plot, args.overwrite, "--plot")
    work = WorkDir(args.work_dir)
    config = work.config()
    resource = config["netadapt"]["resource"]
    start = config["start"]
    metric = config.get("metric", "accuracy")
    history = work.history()
    rows = [[0, "-", human(start["resource"]), "100.0%", f"{start['accuracy']:.4f}", "(start)", "-", "-", "-"]]
    for h in history:
        ok = sum(c["status"] == "ok" for c in h["candidates"])
        rows.append([h["iteration"], human(h["target"]), human(h["resource"]), f"{h['resource'] / start['resource']:.1%}",
                     f"{h['accuracy']:.4f}", h["group"], h["channels"], ok, f"{h['seconds']:.1f}"])
    header = "val acc" if metric == "accuracy" else f"val {metric}"
    print(format_table(rows, ["iter", "target", resource_label(resource), "of start", header, "group pruned", "width",
                              "candidates", "s"]))
    plot = plot_tradeoff(history, start, resource, args.plot or Path(args.work_dir) / "tradeoff.png",
                         title=f"NetAdapt: {Path(args.work_dir).name}", metric=metric)
    print(f"plot: {plot}")
    return 0
