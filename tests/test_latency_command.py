"""``--platform command``: the user's command times the exported network; results are cached by the network's
signature (never measured twice, also across a stopped and resumed NetAdapt run); failures are one clear line."""

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import prunekit
from prunekit.cli.main import main
from prunekit.errors import PrunekitError
from prunekit.io import save_checkpoint
from prunekit.latency import get_platform, measure_latency
from prunekit.latency.platforms.command import parse_milliseconds

pytest.importorskip("onnx")

DEVICE = """
import os, sys
onnx, batch, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(log, "a") as f:
    f.write("run\\n")
runs = sum(1 for _ in open(log))
fail_at = os.environ.get("FAKE_DEVICE_FAIL_AT")
if fail_at and runs >= int(fail_at):
    print("device unplugged", file=sys.stderr)
    sys.exit(3)
print("warming up 10 runs")
print(f"latency_ms: {os.path.getsize(onnx) * batch / 1e5:.6f}")
"""
"""A fake device: counts its runs in a log file and 'measures' the ONNX file's size (deterministic)."""


@pytest.fixture
def device(tmp_path):
    script = tmp_path / "device.py"
    script.write_text(DEVICE)
    log = tmp_path / "runs.log"
    command = f"{sys.executable} {script} {{onnx}} {{batch}} {log}"
    return command, log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def convnet(width=16):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, 24, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(24, 10)).eval()


def test_the_output_is_read_as_documented():
    assert parse_milliseconds("runs: 100\nlatency_ms: 1.25\ndone 7\n") == 1.25  # the tagged line wins
    assert parse_milliseconds("Latency_MS=3e-1") == 0.3
    assert parse_milliseconds("median over 50 runs: 2.5") == 2.5  # else the last number
    assert parse_milliseconds("no figures here") is None


def test_a_second_measurement_of_the_same_network_does_not_run_the_command(device, tmp_path):
    command, log = device
    x = torch.randn(2, 3, 8, 8)
    first = measure_latency(convnet(), x, "command", command=command, cache=tmp_path / "c.json")
    assert first.median_ms > 0 and runs(log) == 1 and first.platform["cached"] is False
    again = measure_latency(convnet(), x, "command", command=command, cache=tmp_path / "c.json")  # other weights, same network
    assert again.median_ms == first.median_ms and runs(log) == 1 and again.platform["cached"] is True
    measure_latency(convnet(width=8), x, "command", command=command, cache=tmp_path / "c.json")  # another network
    measure_latency(convnet(), x[:1], "command", command=command, cache=tmp_path / "c.json")  # another batch
    assert runs(log) == 3
    entries = json.loads((tmp_path / "c.json").read_text())["entries"]
    assert len(entries) == 3 and {e["batch"] for e in entries.values()} == {1, 2}


def test_the_cache_defaults_to_prunekits_cache_folder(device, tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))
    command, log = device
    measure_latency(convnet(), torch.randn(1, 3, 8, 8), "command", command=command)
    assert (tmp_path / "cache" / "measure-command.json").is_file()


@pytest.mark.parametrize("script,message", [
    ("import sys; print('boom on device'); sys.exit(3)", r"failed with exit code 3; its output: 'boom on device'"),
    ("print('all good')", r"printed no positive milliseconds on stdout .*its output: 'all good'"),
    ("import time; print('starting'); time.sleep(30)", r"timed out after 0.5 s"),
])
def test_a_failing_command_is_one_clear_error_naming_it(tmp_path, script, message):
    (tmp_path / "s.py").write_text(script)
    command = f"{sys.executable} {tmp_path / 's.py'} {{onnx}}"
    platform = get_platform("command", command=command, cache=tmp_path / "c.json", timeout_s=0.5)
    with pytest.raises(PrunekitError, match=message) as err:
        measure_latency(convnet(), torch.randn(1, 3, 8, 8), platform)
    assert "measure command" in str(err.value) and "s.py {onnx}" in str(err.value) and "\n" not in str(err.value)


def test_a_bad_command_line_is_refused_before_any_work(tmp_path):
    with pytest.raises(PrunekitError, match="needs --measure-command"):
        get_platform("command")
    with pytest.raises(PrunekitError, match=r"must name the ONNX file as \{onnx\}"):
        get_platform("command", command="bench model.onnx")
    with pytest.raises(PrunekitError, match="program 'no-such-program-xyz' not found"):
        measure_latency(convnet(), torch.randn(1, 3, 8, 8), "command", command="no-such-program-xyz {onnx}",
                cache=tmp_path / "c.json")


def test_the_cli_prints_one_line_for_a_failing_command(tmp_path, capsys):
    save_checkpoint(tmp_path / "ck", prunekit.create_model("helloworld", 10, 3, 16), input_shape=(3, 16, 16))
    (tmp_path / "s.py").write_text("import sys; print('adb: no devices', file=sys.stderr); sys.exit(1)")
    code = main(["latency", "--checkpoint", str(tmp_path / "ck"), "--platform", "command",
                 "--measure-command", f"{sys.executable} {tmp_path / 's.py'} {{onnx}} {{batch}}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("prunekit: error: measure command") and "adb: no devices" in err


def test_the_stand_in_device_script_times_the_file_in_another_process(tmp_path):
    pytest.importorskip("onnxruntime")
    script = Path(__file__).parents[1] / "examples" / "device" / "ort_bench.py"
    command = f"{sys.executable} {script} {{onnx}} {{batch}} --runs 5 --warmup 1 --min-time 0.01"
    r = measure_latency(convnet(), torch.randn(2, 3, 8, 8), "command", command=command, cache=tmp_path / "c.json")
    assert 0 < r.median_ms < 1000


def _netadapt(command, work_dir, **kw):
    torch.manual_seed(0)
    score = lambda m: float(sum(p.detach().abs().sum() for p in m.parameters()))  # noqa: E731
    return prunekit.NetAdapt(convnet(), torch.randn(1, 3, 8, 8), budget_ratio=0.6, resource="latency",
                             latency_mode="measure", platform="command", measure_command=command,
                             finetune=lambda m, n: None, evaluate=score, short_term_iters=0, min_channels_step=4,
                             init_reduction_ratio=0.15, work_dir=work_dir, progress=False, log=lambda s: None, **kw)


def test_netadapt_stopped_by_the_command_resumes_without_measuring_anything_twice(device, tmp_path, monkeypatch):
    command, log = device
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "clean"))
    clean = _netadapt(command, tmp_path / "clean-run").run()
    distinct = runs(log)  # one run per distinct network
    assert clean.metrics["reached_budget"] and distinct > 3
    log.unlink()

    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "stopped"))
    monkeypatch.setenv("FAKE_DEVICE_FAIL_AT", str(distinct // 2))
    with pytest.raises(PrunekitError, match="failed with exit code 3"):
        _netadapt(command, tmp_path / "w").run()
    monkeypatch.delenv("FAKE_DEVICE_FAIL_AT")
    resumed = _netadapt(command, tmp_path / "w", resume=True).run()
    assert runs(log) == distinct + 1  # the failed attempt, and each network once
    assert [h["resource"] for h in resumed.history] == [h["resource"] for h in clean.history]
    assert resumed.metrics["latency_platform"]["name"] == "command"


def test_a_working_folder_naming_a_command_runs_it_only_when_the_user_gives_it_again(tmp_path):
    """config.json is data: a measure command written into it is refused on resume, before anything runs."""
    score = lambda m: float(sum(p.detach().abs().sum() for p in m.parameters()))  # noqa: E731
    kw = dict(finetune=lambda m, n: None, evaluate=score, short_term_iters=0, min_channels_step=4,
              work_dir=tmp_path / "w", progress=False, log=lambda s: None)
    prunekit.NetAdapt(convnet(), torch.randn(1, 3, 8, 8), budget_ratio=0.5, max_iters=1, **kw).run()
    config = tmp_path / "w" / "config.json"
    saved = json.loads(config.read_text())
    marker = tmp_path / "PWNED"
    saved["netadapt"].update(resource="latency", budget_ratio=0.9)
    saved["netadapt"]["latency"].update(platform="command", latency_mode="measure",
                                        measure_command=f"touch {marker} {{onnx}}")
    config.write_text(json.dumps(saved))
    with pytest.raises(PrunekitError, match="names the measure command .*give --measure-command again"):
        prunekit.NetAdapt(convnet(), torch.randn(1, 3, 8, 8), resume=True, **kw)
    assert not marker.exists()


def test_a_config_file_naming_a_measure_command_is_refused(tmp_path, capsys):
    save_checkpoint(tmp_path / "ck", prunekit.create_model("helloworld", 10, 3, 16), input_shape=(3, 16, 16))
    marker = tmp_path / "PWNED"
    (tmp_path / "c.yaml").write_text(f"platform: command\nmeasure_command: touch {marker} {{onnx}}\n")
    code = main(["latency", "--config", str(tmp_path / "c.yaml"), "--checkpoint", str(tmp_path / "ck")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a config file is data, not code" in err
    assert not marker.exists()
