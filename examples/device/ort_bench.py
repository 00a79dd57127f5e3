"""A stand-in for a device: time an ONNX file with ONNX Runtime in this (separate) process and print the median.

    python examples/device/ort_bench.py MODEL.onnx BATCH [--threads N] [--runs N] [--warmup N]

prints ``latency_ms: X`` (the median of the timed runs), the line prunekit's ``--platform command``
reads. Use it as ``--measure-command "python examples/device/ort_bench.py {onnx} {batch}"``; a real
device's command would instead copy the file to the device and run its benchmark tool there (for
example ``adb push {onnx} /data/local/tmp/ && adb shell .../benchmark_tool ...``) and print the same line.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("onnx", help="the ONNX file to time")
    p.add_argument("batch", type=int, help="batch size (the file's own batch size when it has a fixed one)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--runs", type=int, default=100, help="timed runs (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--min-time", type=float, default=0.5, help="keep timing until this many seconds (default 0.5)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall (default) or cpu: this process's CPU time, steady on a shared machine (one thread)")
    args = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = args.threads, 1, 3
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [args.batch if i == 0 and not isinstance(d, int) else d for i, d in enumerate(spec.shape)]
    feed = {spec.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(args.warmup):
        session.run(None, feed)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times, start = [], time.perf_counter()
    while len(times) < args.runs or time.perf_counter() - start < args.min_time:
        t0 = clock()
        session.run(None, feed)
        times.append(clock() - t0)
    print(f"runs: {len(times)}")
    print(f"latency_ms: {statistics.median(times) * 1000:.6f}")


if __name__ == "__main__":
    main()
