"""The training loop: learns, is reproducible, network-slimming sparsity, distillation."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import prunekit
from prunekit.data import load_dataset
from prunekit.errors import PrunekitError
from prunekit.training import TrainConfig, evaluate, seed_everything, train
from prunekit.training.inference import fused_for_inference


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _bn_l1(model):
    return sum(m.weight.abs().sum().item() for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_lenet_learns_digits(digits):
    seed_everything(0)
    model = prunekit.create_model("lenet", 10, 1, 8)
    before = evaluate(model, digits.test)["accuracy"]
    history = train(model, digits.train, TrainConfig(epochs=3), val_split=digits.val, progress=False)
    after = evaluate(model, digits.test)["accuracy"]
    assert len(history) == 3 and "val_accuracy" in history[-1]
    assert after > 0.8 > before


def test_same_seed_same_weights(digits):
    def run():
        seed_everything(3)
        model = prunekit.create_model("helloworld", 10, 1, 8)
        train(model, digits.train, TrainConfig(epochs=1, seed=3), progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(), run())


def test_steps_caps_the_number_of_batches(digits):
    model = prunekit.create_model("dnn_2", 10, 1, 8)
    history = train(model, digits.train, TrainConfig(epochs=100, batch_size=16), steps=7, progress=False)
    assert history[-1]["steps"] == 7


def test_bn_sparsity_shrinks_batchnorm_scales(digits):
    def run(strength):
        seed_everything(0)
        model = prunekit.create_model("helloworld", 10, 1, 8)
        train(model, digits.train, TrainConfig(epochs=2, sparsity=strength), progress=False)
        return _bn_l1(model)

    assert run(0.2) < 0.8 * run(0.0)


def test_distillation_from_a_teacher_trains(digits):
    seed_everything(0)
    teacher = prunekit.create_model("lenet", 10, 1, 8)
    train(teacher, digits.train, TrainConfig(epochs=2), progress=False)
    student = prunekit.create_model("dnn_2", 10, 1, 8)
    train(student, digits.train, TrainConfig(epochs=2), teacher=teacher, progress=False)
    assert evaluate(student, digits.test)["accuracy"] > 0.8


@pytest.mark.parametrize("bad", [dict(optimizer="rmsprop"), dict(scheduler="warm"), dict(lr=0), dict(sparsity=-1)])
def test_bad_training_options(bad):
    with pytest.raises(PrunekitError):
        TrainConfig(**bad)


@pytest.mark.parametrize("name", ["epochs", "lr", "momentum", "weight_decay", "sparsity", "distill_alpha",
                                  "distill_temperature"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_training_setting_refuses_nan_and_infinity_naming_its_flag(name, value):
    flag = "--" + name.replace("_", "-")
    with pytest.raises(PrunekitError, match=f"^{flag} must be a finite number, got {value}$"):
        TrainConfig(**{name: value})
    with pytest.raises(PrunekitError, match=f"^{flag} must be a finite number"):
        TrainConfig.from_dict({name: value}, source="x.yaml")


def test_training_stopped_after_an_epoch_resumes_to_the_uninterrupted_weights(digits, tmp_path):
    from prunekit import create_model

    cfg = TrainConfig(epochs=3, seed=1)
    seed_everything(0)
    whole = create_model("lenet", 10, 1, 8)
    train(whole, digits.train, cfg, progress=False, augment="crop_flip")

    class Stop(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise Stop

    seed_everything(0)
    with pytest.raises(Stop):
        train(create_model("lenet", 10, 1, 8), digits.train, cfg, progress=False, augment="crop_flip",
              state_dir=tmp_path, on_epoch=stop_after_first)
    seed_everything(7)  # a different fresh model: everything comes from the saved state
    resumed = create_model("lenet", 10, 1, 8)
    history = train(resumed, digits.train, cfg, progress=False, augment="crop_flip", state_dir=tmp_path)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("scheduler,optimizer", [("none", "momentum"), ("none", "sgd"), ("cosine", "adam")])
def test_a_batchnorm_model_validated_each_epoch_resumes_to_the_uninterrupted_weights(digits, tmp_path, scheduler,
                                                                                     optimizer):
    """The validation pass between epochs must not change the layout the next epoch trains in (it did: a resumed
    run trained channels-last, the uninterrupted one contiguous, and a constant learning rate amplified the
    rounding to 0.3 in the weights)."""
    from prunekit import create_model

    cfg = TrainConfig(epochs=3, seed=0, lr=0.05, batch_size=64, scheduler=scheduler, optimizer=optimizer)

    def fresh():
        seed_everything(0)
        return create_model("vgg11", 10, 1, 8, width_mult=0.25)

    whole = fresh()
    train(whole, digits.train, cfg, val_split=digits.val, progress=False)

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(), digits.train, cfg, val_split=digits.val, progress=False, state_dir=tmp_path,
              on_epoch=stop_after_first)
    resumed = fresh()
    train(resumed, digits.train, cfg, val_split=digits.val, progress=False, state_dir=tmp_path)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_state_saved_before_a_setting_existed_still_resumes(digits, tmp_path):
    """A training setting added in a later prunekit (here: topk) at its default does not strand a saved run."""
    import json

    from prunekit import create_model

    cfg = TrainConfig(epochs=2, seed=1)

    def stop(record):
        raise KeyboardInterrupt

    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        train(create_model("lenet", 10, 1, 8), digits.train, cfg, progress=False, state_dir=tmp_path, on_epoch=stop)
    saved = next(tmp_path.rglob("*.json"))
    record = json.loads(saved.read_text())
    del record["config"]["topk"]  # as an older prunekit wrote it
    saved.write_text(json.dumps(record))
    with pytest.raises(PrunekitError, match="other settings"):  # a setting that really differs still refuses
        train(create_model("lenet", 10, 1, 8), digits.train, TrainConfig(epochs=2, seed=1, topk=5), progress=False,
              state_dir=tmp_path)
    history = train(create_model("lenet", 10, 1, 8), digits.train, cfg, progress=False, state_dir=tmp_path)
    assert [r["epoch"] for r in history] == [1, 2]


def test_training_state_from_other_settings_is_refused(digits, tmp_path):
    from prunekit import create_model

    train(create_model("lenet", 10, 1, 8), digits.train, TrainConfig(epochs=1), progress=False, state_dir=tmp_path)
    with pytest.raises(PrunekitError, match="other settings"):
        train(create_model("lenet", 10, 1, 8), digits.train, TrainConfig(epochs=1, lr=0.01), progress=False,
              state_dir=tmp_path)


class _Flattening(nn.Module):
    """A convolution then ``view`` on its feature map: a forward that cannot take the channels-last layout."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.shape[0], -1))


class _SharedConv(nn.Module):
    """One convolution called twice, each time followed by its own BatchNorm: folding one would change the other."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn1, self.bn2 = nn.Conv2d(1, 1, 3, padding=1), nn.BatchNorm2d(1), nn.BatchNorm2d(1)

    def forward(self, x):
        return self.bn2(self.conv(self.bn1(self.conv(x)))).flatten(1)


class _Branching(nn.Module):
    """Control flow on the data: cannot be traced symbolically."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y.flatten(1) if x.sum() > 0 else -y.flatten(1)


def _with_statistics(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("name", ["resnet20", "flattening", "shared"])
@pytest.mark.parametrize("size", ["small", "folded"])
def test_fast_evaluation_gives_the_same_results_and_leaves_the_model_as_it_was(digits, name, size):
    seed_everything(0)
    if size == "folded":  # enough input values to fold BatchNorm (digits' 8x8 images, repeated)
        from prunekit.data.bundle import TensorSplit
        from prunekit.training.inference import FOLD_MIN_VALUES

        reps = FOLD_MIN_VALUES // (len(digits.val) * 64) + 1
        digits = SimpleNamespace(val=TensorSplit(digits.val.x.repeat(reps, 1, 1, 1), digits.val.y.repeat(reps)))
    model = {"resnet20": lambda: prunekit.create_model("resnet20", 10, 1, 8, width=4), "flattening": _Flattening,
             "shared": lambda: nn.Sequential(_SharedConv(), nn.Linear(64, 10))}[name]()
    if name == "resnet20":
        _with_statistics(model)  # running statistics that folding must carry over
    model.train()
    fast, plain = evaluate(model, digits.val), evaluate(model, digits.val, fast=False)
    assert fast["accuracy"] == plain["accuracy"] and fast["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    assert model.training  # its mode restored
    assert all(p.is_contiguous() for p in model.parameters())  # and its layout


def test_batchnorm_is_folded_for_evaluation_only_where_it_is_safe():
    seed_everything(0)
    x = torch.randn(4, 1, 8, 8)
    resnet = _with_statistics(prunekit.create_model("resnet20", 10, 1, 8, width=4))
    fused = fused_for_inference(resnet, x)
    assert fused is not resnet and not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    with torch.no_grad():
        assert torch.allclose(fused(x), resnet(x), atol=1e-5)
    hooked = _with_statistics(prunekit.create_model("resnet20", 10, 1, 8, width=4))
    hooked.bn1.register_forward_hook(lambda module, inputs, output: None)  # e.g. one that records activations
    for model in (_with_statistics(_SharedConv()), _with_statistics(_Branching()), hooked):
        assert fused_for_inference(model, x) is model  # evaluated as it is
    assert fused_for_inference(resnet.train(), x) is resnet  # batch statistics: nothing to fold
