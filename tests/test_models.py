"""The model zoo and the other ways to name a model."""

import re
import sys

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.models import ModelSpec, spec_of
from prunekit.models.registry import build_model

ZOO = ["helloworld", "dnn_2", "dnn_4", "lenet", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19",
       "resnet20", "resnet32", "resnet56", "mobilenet_v1", "mobilenet_v2"]
# (channels, size, classes) of digits, (Fashion-)MNIST, CIFAR-10, CIFAR-100
SHAPES = [(1, 8, 10), (1, 28, 10), (3, 32, 10), (3, 32, 100)]


def test_zoo_lists_every_required_model():
    assert set(ZOO) <= set(prunekit.list_models())


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("channels,size,classes", SHAPES)
def test_zoo_model_runs_at_dataset_shape(name, channels, size, classes):
    model = prunekit.create_model(name, num_classes=classes, in_channels=channels, input_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def test_create_model_records_its_spec_and_rebuilds():
    model = prunekit.create_model("vgg11", 7, 1, 28, width_mult=0.25)
    spec = spec_of(model)
    assert spec == ModelSpec("vgg11", 7, 1, (28, 28), {"width_mult": 0.25})
    rebuilt = build_model(ModelSpec.from_dict(spec.to_dict()))
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_width_mult_shrinks_vgg():
    full = sum(p.numel() for p in prunekit.create_model("vgg11", 10, 3, 32).parameters())
    small = sum(p.numel() for p in prunekit.create_model("vgg11", 10, 3, 32, width_mult=0.25).parameters())
    assert small < full / 8


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_torchvision_model_adapts_channels_and_classes(channels):
    model = prunekit.create_model("torchvision:resnet18", num_classes=5, in_channels=channels, input_size=32).eval()
    with torch.no_grad():
        assert model(torch.randn(1, channels, 32, 32)).shape == (1, 5)


def test_unknown_torchvision_model_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="resnet18"):
        prunekit.create_model("torchvision:no_such_net")


def test_user_factory_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "from torch import nn\n"
        "def tiny(num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))\n"
        "def not_a_model(**kw):\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = prunekit.create_model("my_models:tiny", num_classes=3, in_channels=2, input_size=8)
    assert model(torch.randn(1, 2, 8, 8)).shape == (1, 3)
    assert spec_of(model).name == "my_models:tiny"
    with pytest.raises(PrunekitError, match="not a torch.nn.Module"):
        prunekit.create_model("my_models:not_a_model")
    with pytest.raises(PrunekitError, match="cannot import"):
        prunekit.create_model("no_such_module_xyz:f")
    sys.modules.pop("my_models", None)


def test_unknown_zoo_name_lists_models():
    with pytest.raises(UnknownNameError) as err:
        prunekit.create_model("no_such_model")
    assert "lenet" in str(err.value) and "resnet20" in str(err.value)


def test_registering_a_new_model_is_one_decorated_function():
    from prunekit.models import MODELS

    @prunekit.register_model("test_only_tiny")
    def tiny(num_classes=10, in_channels=3, input_size=(32, 32)):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * input_size[0] * input_size[1], num_classes))

    try:
        assert prunekit.create_model("test_only_tiny", 4, 1, 8)(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    finally:
        MODELS._items.pop("test_only_tiny")


@pytest.mark.parametrize("args,kwargs,fault", [
    (("lenet", -3, 1, 8), {}, "num_classes must be a positive integer, got -3"),
    (("lenet", 10, 0, 8), {}, "in_channels must be a positive integer, got 0"),
    (("lenet", 10, 1, (8, 0)), {}, "input_size must be a positive integer, got 0"),
    (("vgg11", 10, 1, 8), {"width_mult": float("nan")}, "width_mult=nan is not a finite number"),
    (("resnet20", 10, 1, 8), {"width": 0}, "has a layer of no width"),
])
def test_create_model_refuses_sizes_that_build_no_network(args, kwargs, fault):
    with pytest.raises(PrunekitError, match=re.escape(fault)):
        prunekit.create_model(*args, **kwargs)


def test_create_model_takes_numpy_integers_for_sizes():
    np = pytest.importorskip("numpy")
    model = prunekit.create_model("lenet", np.int64(10), np.int32(1), 8)
    assert spec_of(model).num_classes == 10
