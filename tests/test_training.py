"""The training loop: learns, is reproducible, network-slimming sparsity, distillation."""

import pytest
import torch
from torch import nn

import prunekit
from prunekit.data import load_dataset
from prunekit.errors import PrunekitError
from prunekit.training import TrainConfig, evaluate, seed_everything, train


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
