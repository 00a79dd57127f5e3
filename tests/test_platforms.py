"""The latency platform registry: every built-in platform measures a tiny network and times one layer,
a platform added from this file works through measure, tables and the CLI, missing runtimes name their extra."""

import json
import sys

import pytest
import torch
from torch import nn

import prunekit
from prunekit.cli.main import main
from prunekit.errors import PrunekitError
from prunekit.io import save_checkpoint
from prunekit.latency import LatencyTable, build_lut, get_platform, list_platforms, measure_latency
from prunekit.latency.platforms import Platform, register_platform

BUILT_IN = ["command", "onnxruntime-cpu", "onnxruntime-cpu-int8", "openvino-cpu", "openvino-cpu-int8", "torch-cpu",
            "torch-cuda"]
RUNTIMES = [p for p in list_platforms() if p not in ("command", "torch-cuda")]  # command: test_latency_command.py


@register_platform("toy-eager")
class ToyEager(Platform):
    """A platform added the way a user would: one class, registered from this file."""

    def session(self, model, example_inputs, threads):
        def run():
            with torch.no_grad():
                model(example_inputs)
        return run


@pytest.fixture(scope="module")
def tiny():
    return prunekit.create_model("helloworld", 10, 3, 16).eval()


def needs(platform: str) -> None:
    if not get_platform(platform).available():
        pytest.skip(f"{platform}'s runtime is not installed here")


def test_the_registry_lists_every_built_in_platform():
    assert set(BUILT_IN) <= set(list_platforms())
    assert list_platforms() == sorted(list_platforms())


@pytest.mark.parametrize("platform", RUNTIMES)
def test_each_platform_measures_a_tiny_network(tiny, platform):
    needs(platform)
    r = measure_latency(tiny, torch.randn(2, 3, 16, 16), platform, threads=1, warmup=1, repeats=3, min_time_s=0.01)
    assert r.median_ms > 0 and r.runs >= 3
    assert r.platform["name"] == platform and r.platform["threads"] == 1 and r.platform["batch_size"] == 2


@pytest.mark.parametrize("platform", RUNTIMES)
def test_each_platform_times_a_single_layer_for_tables(platform):
    needs(platform)
    ms = get_platform(platform).time_layer(nn.Conv2d(8, 16, 3, padding=1), torch.randn(1, 8, 8, 8), 1, 0.005)
    assert ms > 0


def test_openvino_runs_the_quantized_file_with_int8_kernels(tiny, tmp_path):
    needs("openvino-cpu-int8")
    from prunekit.latency.platforms.openvino_cpu import compile_openvino, runtime_precisions

    path = get_platform("openvino-cpu-int8").prepare(tiny, torch.randn(1, 3, 16, 16), tmp_path)
    precisions = runtime_precisions(compile_openvino(path, 1))
    assert any(k.startswith("Convolution") and k.endswith(("u8", "i8")) for k in precisions), precisions
    fp32 = get_platform("openvino-cpu").prepare(tiny, torch.randn(1, 3, 16, 16), tmp_path / "fp32")
    assert all(not k.endswith(("u8", "i8")) for k in runtime_precisions(compile_openvino(fp32, 1)) if k.startswith("Conv"))


def test_onnx_platforms_run_a_file_like_torch(tiny, tmp_path):
    needs("openvino-cpu")
    x = torch.randn(2, 3, 16, 16)
    expected = tiny(x).detach().numpy()
    for name in ("onnxruntime-cpu", "openvino-cpu"):
        platform = get_platform(name)
        path = platform.prepare(tiny, x, tmp_path / name)
        assert abs(platform.runner(path, 1)(x.numpy()) - expected).max() < 1e-3


@pytest.mark.parametrize("platform,module,extra", [("onnxruntime-cpu-int8", "onnxruntime", "onnx"),
                                                   ("openvino-cpu", "openvino", "openvino"),
                                                   ("openvino-cpu-int8", "openvino", "onnx,openvino")])
def test_a_missing_runtime_names_the_extra_to_install(tiny, monkeypatch, platform, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(PrunekitError, match=rf"platform {platform} needs the {module} package: "
                                            rf"pip install 'prunekit\[{extra}\]'"):
        measure_latency(tiny, torch.randn(1, 3, 16, 16), platform)


def test_unknown_names_and_stray_settings_are_one_clear_error():
    with pytest.raises(PrunekitError, match="unknown platform 'npu'; valid platforms: command, "):
        get_platform("npu")
    with pytest.raises(PrunekitError, match="platform torch-cpu takes no settings, got command"):
        get_platform("torch-cpu", command="x {onnx}")
    assert get_platform("torch-cpu", command=None).name == "torch-cpu"  # options left unset are not given


# -- a platform added from a test file, with no other change ---------------------------------------


def test_a_registered_toy_platform_measures_through_the_library(tiny):
    assert "toy-eager" in list_platforms()
    r = measure_latency(tiny, torch.randn(1, 3, 16, 16), "toy-eager", threads=1, warmup=1, repeats=3, min_time_s=0.01)
    assert r.median_ms > 0 and r.platform["name"] == "toy-eager"


def test_a_registered_toy_platform_builds_a_table(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4)).eval()
    x = torch.randn(1, 3, 8, 8)
    table = build_lut(model, x, "toy-eager", min_channels_step=4, threads=1, entry_time_s=0.002, progress=False,
                      save_to=tmp_path / "toy.json")
    assert table.platform == "toy-eager" and table.entries and table.is_calibrated(x)
    assert LatencyTable.load(tmp_path / "toy.json", "toy-eager", 1).predict(model, x) > 0


def test_a_registered_toy_platform_is_a_cli_choice(tiny, tmp_path, capsys):
    save_checkpoint(tmp_path / "ck", tiny, input_shape=(3, 16, 16))
    assert main(["latency", "--checkpoint", str(tmp_path / "ck"), "--platform", "toy-eager", "--threads", "1"]) == 0
    assert "on toy-eager" in capsys.readouterr().out
    from prunekit.cli.main import build_parser

    assert "toy-eager" in build_parser()[1]["latency"].format_help()  # help texts are built from the registry


# -- the cpu clock -----------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", RUNTIMES)
def test_each_platform_times_by_cpu_time_on_request(tiny, platform):
    needs(platform)
    r = measure_latency(tiny, torch.randn(1, 3, 16, 16), platform, threads=1, warmup=1, repeats=3, min_time_s=0.01,
                clock="cpu")
    assert r.median_ms > 0 and r.platform["clock"] == "cpu"
    assert get_platform(platform).time_layer(nn.Conv2d(4, 4, 1), torch.randn(1, 4, 4, 4), 1, 0.002) > 0


def test_the_cpu_clock_needs_one_thread_and_a_platform_timed_here(tiny):
    with pytest.raises(PrunekitError, match="the cpu clock times one thread: use --threads 1"):
        measure_latency(tiny, torch.randn(1, 3, 16, 16), "onnxruntime-cpu", threads=2, clock="cpu")
    with pytest.raises(PrunekitError, match="unknown latency clock 'sun'; valid: wall, cpu"):
        get_platform("torch-cpu", clock="sun")
    with pytest.raises(PrunekitError, match="cpu clock does not apply"):
        get_platform("torch-cuda", clock="cpu")
    with pytest.raises(PrunekitError, match="does not apply"):
        get_platform("command", command="x {onnx}", clock="cpu")


def test_a_table_keeps_its_clock(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 4)).eval()
    x = torch.randn(1, 3, 8, 8)
    build_lut(model, x, get_platform("torch-cpu", clock="cpu"), min_channels_step=4, threads=1, entry_time_s=0.002,
              progress=False, save_to=tmp_path / "cpu.json")
    assert LatencyTable.load(tmp_path / "cpu.json").record["clock"] == "cpu"  # named by its file alone
    with pytest.raises(PrunekitError, match="clock 'cpu'; here: clock 'wall'"):
        LatencyTable.load(tmp_path / "cpu.json", "torch-cpu", 1)
    doc = json.loads((tmp_path / "cpu.json").read_text())
    del doc["platform"]["clock"]  # a table from before clocks were recorded was timed by the wall clock
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert LatencyTable.load(tmp_path / "old.json", "torch-cpu", 1).record["clock"] == "wall"


def test_netadapt_settings_carry_the_clock_to_the_latency_metric(tiny):
    from prunekit.algorithms.netadapt import NetAdaptConfig
    from prunekit.resources import MetricContext, make_metric

    cfg = NetAdaptConfig().with_changes(budget_ratio=0.5, resource="latency", latency_clock="cpu",
                                        latency_mode="measure", threads=1)
    assert cfg.latency.latency_clock == "cpu" and cfg.latency.measure_command is None
    metric = make_metric("latency", MetricContext(options={"latency": cfg.latency}))
    assert metric.backend.clock == "cpu" and metric.of_model(tiny, torch.randn(1, 3, 16, 16)) > 0
