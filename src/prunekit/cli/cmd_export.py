"""``prunekit export``: a checkpoint folder to ONNX or TorchScript for deployment."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.errors import PrunekitError
from prunekit.io import export_model, load_checkpoint

NAME = "export"
HELP = "export a checkpoint to ONNX or TorchScript"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit export``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="output format")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--batch-size", type=int, default=1, help="batch size of the example input (default 1)")


def run(args: argparse.Namespace) -> int:
    """Load and export."""
    out = Path(args.out)
    if out.is_dir():
        raise PrunekitError(f"--out {out} is a folder: give the file to write, e.g. {out / 'model.onnx'}")
    if out.exists() and not args.overwrite:
        raise PrunekitError(f"--out {out} already exists: choose another --out, or pass --overwrite to replace it")
    if out.resolve().parent == Path(args.checkpoint).resolve():
        raise PrunekitError(f"--out {out} is inside the checkpoint folder {args.checkpoint}: write it elsewhere")
    ckpt = load_checkpoint(args.checkpoint)
    path = export_model(ckpt.model, ckpt.example_inputs(args.batch_size), args.out, args.format)
    print(f"wrote {path}")
    return 0
