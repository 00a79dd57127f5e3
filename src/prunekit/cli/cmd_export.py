"""``prunekit export``: a checkpoint folder to ONNX or TorchScript for deployment."""

from __future__ import annotations

import argparse

from prunekit.cli.options import add_trust_args, positive_int
from prunekit.io import export_model, load_checkpoint
from prunekit.io.output import check_file_output

NAME = "export"
HELP = "export a checkpoint to ONNX or TorchScript"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit export``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="output format")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size of the example input (default 1)")
    add_trust_args(p)


def run(args: argparse.Namespace) -> int:
    """Load and export."""
    check_file_output(args.out, args.overwrite, "--out", outside={"the checkpoint folder": args.checkpoint})
    ckpt = load_checkpoint(args.checkpoint)
    path = export_model(ckpt.model, ckpt.example_inputs(args.batch_size), args.out, args.format)
    print(f"wrote {path}")
    return 0
