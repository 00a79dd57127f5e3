"""Evaluation with and without prunekit's faster forward passes (channels-last, BatchNorm folded), on zoo and
torchvision models: seconds and accuracy, so that both the speed-up and the unchanged results show.

    OMP_NUM_THREADS=1 python bench/eval_speed.py

Each model is built untrained (seed 0) and evaluated on 1000 random images of its input size, best of 3
runs after a warm-up, one torch thread; prints a markdown table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

import prunekit
from prunekit.data.bundle import TensorSplit
from prunekit.training import evaluate
from prunekit.training.inference import fused_for_inference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, machine_line  # noqa: E402

MODELS = [("resnet20", 1, 28), ("vgg11", 1, 28), ("mobilenet_v2", 3, 32), ("torchvision:resnet18", 3, 64)]
"""(model, input channels, input size): the zoo at the sizes of this project's benchmarks, and one torchvision net."""


def seconds(model: torch.nn.Module, split: TensorSplit, fast: bool) -> tuple[float, float]:
    """Best wall seconds of 3 evaluations, and the accuracy."""
    evaluate(model, TensorSplit(split.x[:64], split.y[:64]), fast=fast)
    best, accuracy = float("inf"), 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        accuracy = evaluate(model, split, fast=fast)["accuracy"]
        best = min(best, time.perf_counter() - t0)
    return best, accuracy


def main() -> None:
    torch.set_num_threads(1)
    print(machine_line(machine()), "\n")
    print("| model | input | BatchNorm folded | plain s | fast s | speed-up | accuracy plain / fast |")
    print("|---|---|---|---|---|---|---|")
    for name, channels, size in MODELS:
        torch.manual_seed(0)
        model = prunekit.create_model(name, 10, channels, size).eval()
        split = TensorSplit(torch.randn(1000, channels, size, size), torch.randint(0, 10, (1000,)))
        folded = fused_for_inference(model, split.x[:2]) is not model
        plain, plain_acc = seconds(model, split, fast=False)
        fast, fast_acc = seconds(model, split, fast=True)
        print(f"| {name} | {channels}x{size}x{size} | {'yes' if folded else 'no'} | {plain:.2f} | {fast:.2f} | "
              f"{plain / fast:.2f}x | {plain_acc:.4f} / {fast_acc:.4f} |", flush=True)


if __name__ == "__main__":
    main()
