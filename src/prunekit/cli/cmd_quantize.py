"""``prunekit quantize``: int8 post-training quantization of a checkpoint (ONNX Runtime), tested and timed."""

from __future__ import annotations

import argparse

from prunekit.cli.options import (
    add_data_args, add_settings, add_trust_args, data_config, positive_int, settings_from_args,
)
from prunekit.deploy import quantize_checkpoint
from prunekit.deploy.config import QuantizeConfig
from prunekit.latency.timing import CLOCKS
from prunekit.pipeline.steps import recorded_data_config
from prunekit.reports import format_table

NAME = "quantize"
HELP = "quantize a checkpoint to int8 ONNX (static, calibrated on its training data); test and time fp32 and int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``prunekit quantize``."""
    p.add_argument("--checkpoint", required=True, help="checkpoint folder to quantize (left untouched)")
    p.add_argument("--out", required=True, help="folder to write: a copy of the checkpoint plus model.onnx and "
                                                "model.int8.onnx, and both files' figures in metrics.json")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already holds something")
    add_settings(p, QuantizeConfig, "quantization")
    add_timing_args(p)
    add_data_args(p)
    add_trust_args(p)


def add_timing_args(p: argparse.ArgumentParser) -> None:
    """How the fp32 and int8 files are timed (``run`` step 4 times at NetAdapt's --latency-batch and --threads)."""
    p.add_argument("--latency-batch", type=positive_int, nargs="+", default=[1], metavar="N",
                   help="batch sizes to time (default 1)")
    p.add_argument("--threads", type=positive_int, default=1, help="threads of the timed runs (default 1)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall (default) or cpu: CPU time of one thread, steady on a shared machine")


def run(args: argparse.Namespace) -> int:
    """Quantize, then print fp32 against int8."""
    cfg = settings_from_args(QuantizeConfig, args)
    metrics = quantize_checkpoint(args.checkpoint, args.out, calibration_samples=cfg.calibration_samples,
                                  seed=cfg.calibration_seed, overwrite=args.overwrite, settings=cfg.quant_settings(),
                                  data_cfg=data_config(args, recorded_data_config(args.checkpoint)),
                                  latency_batches=args.latency_batch, threads=args.threads, clock=args.clock)
    batches = list(metrics["onnx_fp32"]["latency_ms"])
    rows = []
    for name in ("onnx_fp32", "onnx_int8"):
        m = metrics[name]
        rows.append([m["file"], f"{m['test_accuracy']:.4f}", f"{m['file_bytes'] / 2**20:.2f}",
                     *(f"{m['latency_ms'][b]:.3f}" for b in batches)])
    print(format_table(rows, ["file", "test acc", "MiB", *(f"ms {b}" for b in batches)]))
    print(f"int8 - fp32 test accuracy: {-metrics['int8_accuracy_drop'] * 100:+.2f} points; "
          f"timed on {metrics['deploy_platform']['name']}, {args.threads} thread(s); written to {args.out}")
    return 0
