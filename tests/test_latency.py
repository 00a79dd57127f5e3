"""Latency measurement on the CPU platforms, platform records, per-layer costs, clear errors."""

import sys

import pytest
import torch

import prunekit
from prunekit.cli.main import main
from prunekit.errors import PrunekitError
from prunekit.io import save_checkpoint
from prunekit.latency import layer_costs, measure_latency


@pytest.fixture(scope="module")
def tiny():
    return prunekit.create_model("helloworld", 10, 3, 16).eval()


@pytest.mark.parametrize("platform", ["torch-cpu", "onnxruntime-cpu"])
def test_measure_reports_median_spread_runs_and_platform(tiny, platform):
    x = torch.randn(2, 3, 16, 16)
    r = measure_latency(tiny, x, platform, threads=1, warmup=2, repeats=5, min_time_s=0.05)
    assert 0 < r.min_ms <= r.median_ms and r.iqr_ms >= 0 and r.runs >= 5
    assert r.platform["name"] == platform and r.platform["threads"] == 1 and r.platform["batch_size"] == 2
    assert r.platform["device"]
    if platform == "torch-cpu":  # the allocator setting that keeps eager timings steady is recorded
        assert r.platform["allocator"]
    assert torch.get_num_threads() == 1  # the thread count is restored (conftest pins 1)


def test_measure_restores_the_thread_count(tiny):
    torch.set_num_threads(2)
    measure_latency(tiny, torch.randn(1, 3, 16, 16), "torch-cpu", threads=1, warmup=1, repeats=2, min_time_s=0.01)
    assert torch.get_num_threads() == 2


def test_unknown_platform_lists_the_valid_ones(tiny):
    with pytest.raises(PrunekitError, match="valid platforms: .*onnxruntime-cpu.*torch-cpu, torch-cuda"):
        measure_latency(tiny, torch.randn(1, 3, 16, 16), "tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_torch_cuda_without_a_gpu_says_so(tiny):
    with pytest.raises(PrunekitError, match="needs a CUDA GPU"):
        measure_latency(tiny, torch.randn(1, 3, 16, 16), "torch-cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torch_cuda_measures(tiny):
    r = measure_latency(tiny, torch.randn(1, 3, 16, 16), "torch-cuda", warmup=2, repeats=5, min_time_s=0.05)
    assert r.median_ms > 0 and r.platform["name"] == "torch-cuda"


def test_onnxruntime_missing_says_how_to_install(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(PrunekitError, match=r"pip install 'prunekit\[onnx\]'"):
        measure_latency(tiny, torch.randn(1, 3, 16, 16), "onnxruntime-cpu")


def test_pruned_model_measures_on_both_platforms(tiny):
    x = torch.randn(1, 3, 16, 16)
    pruned = prunekit.prune(tiny, x, ratio=0.5)
    for platform in ("torch-cpu", "onnxruntime-cpu"):
        assert measure_latency(pruned, x, platform, threads=1, warmup=1, repeats=3, min_time_s=0.02).median_ms > 0


def test_layer_costs_rank_leaf_layers(tiny):
    rows = layer_costs(tiny, torch.randn(1, 3, 16, 16), runs=3)
    assert rows[0]["ms"] >= rows[-1]["ms"]
    assert {r["layer"] for r in rows} >= {"0.0", "2.0", "5"}
    assert abs(sum(r["share"] for r in rows) - 1) < 1e-6


def test_cli_latency(tiny, tmp_path, capsys):
    save_checkpoint(tmp_path / "ck", tiny, input_shape=(3, 16, 16))
    assert main(["latency", "--checkpoint", str(tmp_path / "ck"), "--platform", "onnxruntime-cpu", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "ms median" in out and "onnxruntime" in out and "most expensive layers" in out
    assert main(["latency", "--checkpoint", str(tmp_path / "ck"), "--platform", "nope"]) == 2
    assert "valid platforms" in capsys.readouterr().err
