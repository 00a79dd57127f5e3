"""int8 quantization: an ONNX round trip (the file loads, runs, and agrees with fp32), the checkpoint step
(files, metrics side by side, a still-loadable folder, no overwriting) from Python and the CLI."""

import json

import numpy as np
import pytest
import torch

import prunekit
from prunekit.cli.main import main
from prunekit.data.bundle import TensorSplit
from prunekit.deploy import QuantSettings, calibration_batches, onnx_accuracy, quantize_onnx
from prunekit.errors import PrunekitError
from prunekit.io import export_model, load_checkpoint

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained for one epoch on digits (a second on the CLI's own data settings)."""
    out = tmp_path_factory.mktemp("q") / "ck"
    assert main(["train", "--model", "lenet", "--dataset", "digits", "--epochs", "1", "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_an_onnx_round_trip_loads_runs_and_agrees_with_fp32(tmp_path):
    model = prunekit.create_model("helloworld", 10, 3, 16).eval()
    x = torch.randn(4, 3, 16, 16)
    fp32 = export_model(model, x, tmp_path / "m.onnx", "onnx", dynamic_batch=True)
    int8 = quantize_onnx(fp32, tmp_path / "m.int8.onnx", [torch.randn(8, 3, 16, 16).numpy() for _ in range(4)])
    loaded = onnx.load(str(int8))
    onnx.checker.check_model(loaded)
    ops = {n.op_type for n in loaded.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    for batch in (1, 4):  # the batch size stays dynamic
        out = session.run(None, {"input": x[:batch].numpy()})[0]
        assert out.shape == (batch, 10)
    expected = model(x).detach().numpy()
    assert np.corrcoef(out.ravel(), expected.ravel())[0, 1] > 0.95
    assert int8.stat().st_size < fp32.stat().st_size


def test_top1_of_an_onnx_file_with_a_fixed_batch_pads_the_last_batch(tmp_path):
    model = prunekit.create_model("helloworld", 3, 1, 8).eval()
    split = TensorSplit(torch.randn(10, 1, 8, 8), torch.randint(0, 3, (10,)))
    expected = float((model(split.x).argmax(1) == split.y).float().mean())
    fixed = export_model(model, torch.zeros(4, 1, 8, 8), tmp_path / "fixed.onnx", "onnx")
    assert onnx_accuracy(fixed, split, batch_size=3, threads=1) == pytest.approx(expected)
    dynamic = export_model(model, torch.zeros(1, 1, 8, 8), tmp_path / "dyn.onnx", "onnx", dynamic_batch=True)
    assert onnx_accuracy(dynamic, split, platform="onnxruntime-cpu", threads=1) == pytest.approx(expected)


def test_the_calibration_sample_is_seeded():
    split = TensorSplit(torch.arange(100.0).view(100, 1, 1, 1), torch.zeros(100, dtype=torch.long))
    a, b = calibration_batches(split, 40, seed=1, batch_size=16), calibration_batches(split, 40, seed=1, batch_size=16)
    assert [len(x) for x in a] == [16, 16, 8] and all((x == y).all() for x, y in zip(a, b))
    other = np.concatenate(calibration_batches(split, 40, seed=2))
    assert not np.array_equal(np.concatenate(a), other)
    assert len(np.concatenate(calibration_batches(split, 500, seed=0))) == 100
    with pytest.raises(PrunekitError, match="calibration-samples must be >= 1"):
        calibration_batches(split, 0, seed=0)


def test_unknown_settings_are_one_clear_error(tmp_path):
    with pytest.raises(PrunekitError, match="quantization activations 'int4' is not one of uint8, int8"):
        quantize_onnx(tmp_path / "a.onnx", tmp_path / "b.onnx", [], QuantSettings(activations="int4"))


def test_quantize_a_checkpoint_from_python(trained, tmp_path):
    metrics = prunekit.quantize(trained, tmp_path / "q", calibration_samples=64, latency_batches=(1, 2),
                                min_time_s=0.01, log=lambda s: None)
    out = tmp_path / "q"
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file()
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    for key in ("onnx_fp32", "onnx_int8"):
        m = metrics[key]
        assert 0 <= m["test_accuracy"] <= 1 and m["file_bytes"] == (out / m["file"]).stat().st_size
        assert set(m["latency_ms"]) == {"b1", "b2"} and all(v > 0 for v in m["latency_ms"].values())
    assert metrics["onnx_fp32"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=0.01)  # torch's
    assert abs(metrics["int8_accuracy_drop"]) < 0.05
    q = metrics["quantization"]
    assert q["calibration_samples"] == 64 and q["per_channel"] and q["format"] == "QDQ"
    assert load_checkpoint(out).model is not None  # still a checkpoint folder
    assert not list(tmp_path.glob(".q*"))  # the staging folder was renamed into place


def test_the_cli_refuses_existing_output_unless_told_and_prints_the_table(trained, tmp_path, capsys):
    out = tmp_path / "q"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["quantize", "--checkpoint", str(trained), "--out", str(out), "--calibration-samples", "32"]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--overwrite", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "model.int8.onnx" in printed and "test acc" in printed and "int8 - fp32 test accuracy" in printed
    assert not (out / "keep.txt").exists() and (out / "model.int8.onnx").is_file()


def test_a_missing_onnx_runtime_says_which_extra(trained, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(PrunekitError, match=r"pip install 'prunekit\[onnx\]'"):
        prunekit.quantize(trained, tmp_path / "q", log=lambda s: None)


def test_pipeline_step_4_quantizes_the_step_befores_network_from_the_cli_and_yaml(trained, tmp_path, capsys):
    import shutil

    import yaml

    out = tmp_path / "run"
    shutil.copytree(trained, out / "finetuned")
    assert main(["run", "--step", "4", "--out", str(out), "--calibration-samples", "32", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "int8 (ONNX)" in printed
    metrics = json.loads((out / "quantized" / "metrics.json").read_text())
    assert metrics["quantization"]["calibration_samples"] == 32
    assert metrics["deploy_platform"]["threads"] == torch.get_num_threads()  # --threads' one default: torch's setting
    assert (out / "quantized" / "model.int8.onnx").is_file() and load_checkpoint(out / "quantized").model is not None
    config = tmp_path / "q.yaml"  # the same settings from a YAML file, and a refused one
    config.write_text(yaml.safe_dump({"step": "4", "out": str(out), "calibration_samples": 16,
                                      "activations": "int8", "overwrite": True}))
    assert main(["run", "--config", str(config), "--quiet"]) == 0
    metrics = json.loads((out / "quantized" / "metrics.json").read_text())
    assert (metrics["quantization"]["calibration_samples"], metrics["quantization"]["activations"]) == (16, "int8")
    assert main(["run", "--step", "4", "--out", str(out), "--calibration-samples", "0", "--overwrite"]) == 2
    assert "calibration_samples" in capsys.readouterr().err
