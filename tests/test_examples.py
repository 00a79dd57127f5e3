"""The worked examples under examples/ run end to end on their --quick settings (smoke tests: their figures
mean nothing; the real ones are in BENCHMARKS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.mark.skipif(not os.environ.get("PRUNEKIT_SLOW_TESTS"), reason="about 4 minutes on 2 cores (a latency table "
                    "is built and calibrated): set PRUNEKIT_SLOW_TESTS=1 to run it")
def test_the_segmentation_example_adapts_to_its_latency_budget(tmp_path):
    pytest.importorskip("torchvision")
    res = run_example("segmentation/run.py", tmp_path / "seg")
    assert {"base", "adapted", "finetuned"} <= set(res["networks"])
    assert res["networks"]["adapted"]["macs"] < res["networks"]["base"]["macs"]


def test_the_yolo_example_prunes_exports_and_runs_with_onnx_runtime(tmp_path):
    pytest.importorskip("ultralytics")
    pytest.importorskip("onnxruntime")
    res = run_example("yolo/run.py", tmp_path / "yolo")
    nets = res["networks"]
    assert nets["pruned"]["params"] < nets["trained"]["params"]
    assert nets["pruned"]["output_shape"] == nets["trained"]["output_shape"]  # the same detection head
