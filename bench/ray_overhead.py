"""Wall time per NetAdapt iteration: serial vs Ray with 1 and 2 workers, and Ray's cost per candidate.

    OMP_NUM_THREADS=1 python bench/ray_overhead.py

Every run is LeNet on digits to 60 % of its MACs (4 candidates per iteration, 6 iterations).
The overhead per candidate is measured with ``short_term_iters=0`` (a candidate is then only
pruning, counting and scoring: the framework's own work), as Ray's extra wall time over serial.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time

import ray
import torch

import prunekit
from prunekit import NetAdapt
from prunekit.data import load_dataset
from prunekit.executors import make_executor
from prunekit.pipeline.netadapt_step import DataEvaluate, DataFinetune
from prunekit.training import TrainConfig, seed_everything, train


def run(model, data, executor, short_term_iters):
    t0 = time.perf_counter()
    result = NetAdapt(model, data.example_inputs(), finetune=DataFinetune(data), evaluate=DataEvaluate(data),
                      work_dir=tempfile.mkdtemp(), executor=executor, progress=False, log=lambda s: None,
                      budget_ratio=0.6, short_term_iters=short_term_iters, min_channels_step=2,
                      init_reduction_ratio=0.08, reduction_decay=0.9, seed=0).run()
    wall = time.perf_counter() - t0
    per_iter = statistics.mean(h["seconds"] for h in result.history)
    candidates = sum(sum(c["status"] == "ok" for c in h["candidates"]) for h in result.history)
    return per_iter, candidates, [(h["group"], h["resource"]) for h in result.history], wall


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset("digits")
    seed_everything(0)
    model = prunekit.create_model("lenet", 10, 1, 8)
    train(model, data.train, TrainConfig(epochs=5), progress=False)
    print(f"machine: {platform.machine()}, torch threads 1, date {time.strftime('%Y-%m-%d')}")
    print("| executor | short-term batches | s / iteration | candidates | same choices as serial |")
    print("|---|---|---|---|---|")
    for iters in (100, 0):
        base = run(model, data, None, iters)
        print(f"| serial | {iters} | {base[0]:.3f} | {base[1]} | - |")
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            run(model, data, make_executor("ray"), iters)  # warm the workers
            got = run(model, data, make_executor("ray"), iters)
            ray.shutdown()
            print(f"| ray, {workers} worker(s) | {iters} | {got[0]:.3f} | {got[1]} | {got[2] == base[2]} |")
            if iters == 0 and workers == 1:
                overhead = (got[0] - base[0]) * len(got[2]) / got[1]
                print(f"\nRay's extra wall time per candidate (1 worker, no fine-tuning): {overhead * 1000:.0f} ms\n")


if __name__ == "__main__":
    main()
