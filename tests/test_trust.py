"""A checkpoint folder is data, not code: a factory named in model.json is imported only when the user allows it."""

import json
import shutil

import pytest
import torch
import yaml

import prunekit
from prunekit.cli.main import main
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint, save_checkpoint
from prunekit.models import trusting

DIGITS_META = {"data": {"dataset": "digits"}}


def _save(folder, model, shape):
    return save_checkpoint(folder, model, input_shape=shape, meta=DIGITS_META, metrics={"test_accuracy": 0.1})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A zoo LeNet checkpoint for 8x8 digits (untrained: these tests never train it)."""
    torch.manual_seed(0)
    return _save(tmp_path_factory.mktemp("base") / "lenet", prunekit.create_model("lenet", 10, 1, 8), (1, 8, 8))


def _tamper(folder, name, kwargs):
    desc = json.loads((folder / "model.json").read_text())
    desc["model"]["name"] = name
    desc["model"]["kwargs"] = kwargs
    (folder / "model.json").write_text(json.dumps(desc))
    return folder


def _evil(name, marker):
    """(name, kwargs) that would create ``marker`` if the factory were imported and called."""
    return {
        "os:system": {"command": f"touch {marker}"},
        "builtins:exec": {"source": f"open({str(marker)!r}, 'w').close()"},
        "subprocess:run": {"args": ["touch", str(marker)]},
        "no_such_module_xyz:build": {},
    }[name]


EVIL = ["os:system", "builtins:exec", "subprocess:run", "no_such_module_xyz:build"]


@pytest.fixture(params=EVIL)
def evil(request, base, tmp_path):
    """A copy of ``base`` whose model.json names a factory that would run code; yields (folder, marker, name)."""
    marker = tmp_path / "MARKER"
    folder = _tamper(shutil.copytree(base, tmp_path / "evil"), request.param, _evil(request.param, marker))
    yield folder, marker, request.param
    assert not marker.exists(), "the factory named by the checkpoint ran"


def test_api_refuses_and_explains_in_one_line(evil):
    folder, marker, name = evil
    for load in (lambda: prunekit.load(folder), lambda: load_checkpoint(folder)):
        with pytest.raises(PrunekitError) as err:
            load()
        msg = str(err.value)
        assert "\n" not in msg and f"asks to import {name}" in msg
        assert f"--model-factory {name}" in msg and "--trust-factory" in msg and str(folder) in msg
    with pytest.raises(PrunekitError, match=f"asks to import {name} to build its model, not my_pkg.nets:tiny"):
        load_checkpoint(folder, model_factory="my_pkg.nets:tiny")
    with trusting("my_pkg.nets:tiny"), pytest.raises(PrunekitError, match="asks to import"):
        load_checkpoint(folder)


def _commands(folder, good, tmp):
    """Every command that loads a checkpoint, pointed at ``folder``."""
    run_base = tmp / "run2"
    shutil.copytree(folder, run_base / "base")
    run_pruned = tmp / "run3"
    shutil.copytree(folder, run_pruned / "pruned")
    return {
        "eval": ["eval", "--checkpoint", folder],
        "prune": ["prune", "--checkpoint", folder, "--ratio", "0.3", "--out", tmp / "p"],
        "finetune": ["finetune", "--checkpoint", folder, "--out", tmp / "f", "--epochs", "1"],
        "finetune --teacher": ["finetune", "--checkpoint", good, "--teacher", folder, "--out", tmp / "t", "--epochs", "1"],
        "netadapt": ["netadapt", "--checkpoint", folder, "--work-dir", tmp / "w", "--budget-ratio", "0.5"],
        "export": ["export", "--checkpoint", folder, "--format", "onnx", "--out", tmp / "m.onnx"],
        "latency": ["latency", "--checkpoint", folder],
        "lut": ["lut", "build", "--checkpoint", folder, "--out", tmp / "lut.json"],
        "run --step 2": ["run", "--step", "2", "--percent", "0.3", "--out", run_base],
        "run --step 3": ["run", "--step", "3", "--epochs", "1", "--out", run_pruned],
    }


def test_every_cli_command_refuses_and_explains_in_one_line(evil, base, tmp_path, capsys):
    folder, marker, name = evil
    for label, argv in _commands(folder, base, tmp_path).items():
        code = main([str(a) for a in argv] + ["--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2, (label, err)
        assert err.count("\n") == 0 and f"asks to import {name}" in err, (label, err)
        assert "Traceback" not in err


@pytest.fixture
def netadapt_run(base, tmp_path):
    """A one-iteration NetAdapt working folder on ``base``."""
    work = tmp_path / "work"
    argv = ["netadapt", "--checkpoint", str(base), "--work-dir", str(work), "--budget-ratio", "0.2", "--max-iters", "1",
            "--short-term-iters", "1", "--min-channels-step", "2", "--quiet"]
    assert main(argv) == 0
    return work


def test_netadapt_resume_refuses_a_tampered_iteration(netadapt_run, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    _tamper(netadapt_run / "iterations" / "001", "os:system", _evil("os:system", marker))
    capsys.readouterr()
    code = main(["netadapt", "--work-dir", str(netadapt_run), "--resume", "--max-iters", "2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "asks to import os:system" in err
    assert not marker.exists()


def test_config_file_cannot_name_a_factory_or_grant_trust(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": "os:system", "model_arg": [f"command=touch {marker}"], "dataset": "digits"}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o"), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"config file {cfg} asks to import os:system" in err and "a config file is data" in err
    cfg.write_text(yaml.safe_dump({"model": "os:system", "trust_factory": True}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "trust_factory may only be given on the command line" in capsys.readouterr().err
    assert not marker.exists()


@pytest.fixture
def user_factory(tmp_path, monkeypatch):
    """A module ``trust_test_nets`` with a tiny factory, importable for the test's duration."""
    (tmp_path / "trust_test_nets.py").write_text(
        "from torch import nn\n"
        "def tiny(num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(4, num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "trust_test_nets:tiny"
    import sys

    sys.modules.pop("trust_test_nets", None)


def test_a_users_factory_loads_when_named_or_trusted(user_factory, tmp_path):
    torch.manual_seed(0)
    model = prunekit.create_model(user_factory, 10, 1, 8).eval()  # naming it directly is the user's request
    folder = _save(tmp_path / "ck", model, (1, 8, 8))
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(PrunekitError, match=f"asks to import {user_factory}"):
        prunekit.load(folder)
    fresh = prunekit.create_model(user_factory, 10, 1, 8)
    for loaded in (prunekit.load(folder, model_factory=user_factory), prunekit.load(folder, trust_factory=True),
                   prunekit.load(folder, model=fresh)):
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(PrunekitError, match="not other_pkg.mod:fn"):
        prunekit.load(folder, model_factory="other_pkg.mod:fn")
    with trusting([user_factory]):
        assert torch.equal(load_checkpoint(folder).model(x), model(x))


def test_a_users_factory_on_the_cli(user_factory, tmp_path, capsys):
    torch.manual_seed(0)
    folder = _save(tmp_path / "ck", prunekit.create_model(user_factory, 10, 1, 8), (1, 8, 8))
    export = ["export", "--checkpoint", str(folder), "--format", "torchscript"]
    assert main(export + ["--out", str(tmp_path / "a.pt")]) == 2
    assert f"pass --model-factory {user_factory}" in capsys.readouterr().err
    assert main(export + ["--out", str(tmp_path / "b.pt"), "--model-factory", user_factory]) == 0
    assert main(export + ["--out", str(tmp_path / "c.pt"), "--trust-factory"]) == 0
    assert main(export + ["--out", str(tmp_path / "d.pt"), "--model-factory", "other_pkg.mod:fn"]) == 2
    assert "not other_pkg.mod:fn" in capsys.readouterr().err
    # --model names the factory: the run's own later steps may build it again
    assert main(["run", "--model", user_factory, "--dataset", "digits", "--epochs", "1", "--step", "12",
                 "--percent", "0.25", "--out", str(tmp_path / "run"), "--quiet"]) == 0


@pytest.mark.parametrize("name,kwargs", [("lenet", {}), ("torchvision:resnet18", {}), ("vgg11", {"width_mult": 0.25})])
def test_zoo_and_torchvision_checkpoints_load_as_before(tmp_path, name, kwargs):
    torch.manual_seed(0)
    channels = 1 if name == "lenet" else 3
    model = prunekit.create_model(name, 10, channels, 16, **kwargs).eval()
    folder = _save(tmp_path / "ck", model, (channels, 16, 16))
    x = torch.randn(2, channels, 16, 16)
    assert torch.equal(prunekit.load(folder)(x), model(x))


@pytest.mark.parametrize("field,value,message", [
    ("kwargs", ["not", "an", "object"], "'model.kwargs' must be a JSON object"),
    ("kwargs", {"num_classes": 3}, "set by prunekit itself"),
    ("kwargs", {"not an identifier": 1}, "not a valid argument name"),
    ("kwargs", {"width_mult": float("inf")}, "plain JSON value"),
    ("name", "lenet\nrm -rf /", "printable string"),
    ("name", 3, "printable string"),
    ("num_classes", "10", "positive integer"),
    ("in_channels", -1, "positive integer"),
    ("input_size", [8], r"\[height, width\]"),
])
def test_model_description_fields_are_checked(base, tmp_path, field, value, message):
    folder = shutil.copytree(base, tmp_path / "ck")
    desc = json.loads((folder / "model.json").read_text())
    desc["model"][field] = value
    (folder / "model.json").write_text(json.dumps(desc))
    with pytest.raises(PrunekitError, match=message) as err:
        load_checkpoint(folder)
    assert "\n" not in str(err.value) and "model.json" in str(err.value)


def test_unknown_model_argument_is_one_line(base, tmp_path):
    folder = _tamper(shutil.copytree(base, tmp_path / "ck"), "lenet", {"bogus": 1})
    with pytest.raises(PrunekitError, match="lenet does not take bogus"):
        load_checkpoint(folder)
