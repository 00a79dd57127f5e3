"""``prunekit pick``: export one iteration's network of a NetAdapt run as a checkpoint folder."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from prunekit.pipeline.workdir import WorkDir
from prunekit.errors import PrunekitError
from prunekit.io import read_json
from prunekit.io.output import check_output, publish, staging_dir
from prunekit.reports import human

NAME = "pick"
HELP = "export a NetAdapt iteration's model (--iter N, or the first at or under --resource X) as a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit pick``."""
    p.add_argument("work_dir", help="NetAdapt working folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--iter", type=int, help="iteration number (0: the starting network)")
    which.add_argument("--resource", type=float, help="the first iteration whose resource is at or under this")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")


def choose_iteration(work: WorkDir, iteration: int | None, resource: float | None) -> int:
    """The iteration asked for, checked against the history."""
    history = work.history()
    if iteration is not None:
        if not 0 <= iteration <= len(history):
            raise PrunekitError(f"--iter {iteration} is not an iteration of this run (0 to {len(history)})")
        return iteration
    for h in history:
        if h["resource"] <= resource:
            return h["iteration"]
    lowest = min((h["resource"] for h in history), default=work.config()["start"]["resource"])
    raise PrunekitError(f"--resource {resource:.4g}: no iteration is at or under it (the lowest is {lowest:.4g})")


def run(args: argparse.Namespace) -> int:
    """Copy the chosen iteration's checkpoint folder to --out."""
    work = WorkDir(args.work_dir)
    work.config()
    out = Path(args.out).resolve()
    if out == work.path.resolve() or out.is_relative_to(work.path.resolve()):
        raise PrunekitError(f"--out {args.out} is inside the NetAdapt run {args.work_dir}: choose a folder outside it")
    check_output(args.out, args.overwrite, inputs={"the NetAdapt run": args.work_dir})
    n = choose_iteration(work, args.iter, args.resource)
    stage = staging_dir(args.out)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(work.iteration_dir(n), stage)
    publish(stage, Path(args.out), args.overwrite)
    resource = work.config()["netadapt"]["resource"]
    m = read_json(Path(args.out) / "metrics.json")
    figures = ", ".join(f"{k} {human(m[k])}" for k in dict.fromkeys((resource, "macs", "params")) if k in m)
    print(f"iteration {n} -> {args.out} ({figures}, val acc {m.get('val_accuracy', float('nan')):.4f})")
    return 0
