"""``prunekit quantize``: int8 post-training quantization of a checkpoint (ONNX Runtime), tested and timed."""

from __future__ import annotations

import argparse

from prunekit.cli.options import add_data_args, data_config
from prunekit.deploy import QuantSettings, quantize_checkpoint
from prunekit.deploy.onnx_quant import METHODS, TYPES
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
    p.add_argument("--calibration-samples", type=int, default=256,
                   help="training samples the activation ranges are calibrated on (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample (default 0)")
    p.add_argument("--activations", choices=TYPES, default="uint8", help="activation type (default uint8)")
    p.add_argument("--calibration-method", choices=METHODS, default="minmax", help="default minmax")
    p.add_argument("--reduce-range", action="store_true",
                   help="7-bit weights: for x86 CPUs without VNNI, where 8-bit products can overflow")
    p.add_argument("--latency-batch", type=int, nargs="+", default=[1], metavar="N",
                   help="batch sizes to time (default 1)")
    p.add_argument("--threads", type=int, default=1, help="threads of the timed runs (default 1)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall (default) or cpu: CPU time of one thread, steady on a shared machine")
    add_data_args(p)


def run(args: argparse.Namespace) -> int:
    """Quantize, then print fp32 against int8."""
    settings = QuantSettings(activations=args.activations, reduce_range=args.reduce_range,
                             method=args.calibration_method)
    metrics = quantize_checkpoint(args.checkpoint, args.out, calibration_samples=args.calibration_samples,
                                  seed=args.seed, overwrite=args.overwrite, settings=settings,
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
