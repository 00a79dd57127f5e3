"""Checkpoint folders: safetensors + JSON, rebuilt without pickle, clear errors on mismatch."""

import json
import pickle

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import PrunekitError
from prunekit.io import load_checkpoint, save_checkpoint


def test_round_trip_without_pickle(tmp_path, monkeypatch):
    model = prunekit.create_model("resnet20", 10, 3, 32).eval()
    save_checkpoint(tmp_path / "ck", model, input_shape=(3, 32, 32), metrics={"test_accuracy": 0.5})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["metrics.json", "model.json", "model.safetensors"]

    def refuse(*a, **k):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    ckpt = load_checkpoint(tmp_path / "ck")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(ckpt.model(x), model(x))
    assert ckpt.metrics["test_accuracy"] == 0.5 and ckpt.input_shape == (3, 32, 32)
    desc = json.loads((tmp_path / "ck" / "model.json").read_text())
    assert desc["model"]["name"] == "resnet20" and desc["plan"] is None


def test_user_model_needs_a_fresh_instance(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    save_checkpoint(tmp_path / "ck", model, input_shape=(1, 4, 4))
    with pytest.raises(PrunekitError, match="fresh instance"):
        load_checkpoint(tmp_path / "ck")
    fresh = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    ckpt = load_checkpoint(tmp_path / "ck", model=fresh)
    x = torch.randn(1, 1, 4, 4)
    assert torch.equal(ckpt.model(x), model(x))


def test_mismatched_weights_are_one_clear_error(tmp_path):
    save_checkpoint(tmp_path / "ck", prunekit.create_model("lenet", 10, 1, 8), input_shape=(1, 8, 8))
    desc = json.loads((tmp_path / "ck" / "model.json").read_text())
    desc["model"]["num_classes"] = 3
    (tmp_path / "ck" / "model.json").write_text(json.dumps(desc))
    with pytest.raises(PrunekitError, match="does not match its model"):
        load_checkpoint(tmp_path / "ck")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(PrunekitError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrunekitError, match="not a prunekit checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_save_refuses_an_existing_checkpoint_unless_overwrite_and_then_replaces_it_whole(tmp_path):
    old = prunekit.create_model("lenet", 10, 1, 8)
    prunekit.save(old, tmp_path / "sv", input_shape=(1, 8, 8), metrics={"test_accuracy": 0.9})
    (tmp_path / "sv" / "train_log.jsonl").write_text("{}\n")
    before = (tmp_path / "sv" / "model.safetensors").read_bytes()
    new = prunekit.create_model("lenet", 10, 1, 8)
    with pytest.raises(PrunekitError, match="sv already exists: pass overwrite=True"):
        prunekit.save(new, tmp_path / "sv", input_shape=(1, 8, 8))
    assert (tmp_path / "sv" / "model.safetensors").read_bytes() == before
    prunekit.save(new, tmp_path / "sv", input_shape=(1, 8, 8), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "sv").iterdir()) == ["model.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sv"]  # nothing staged or set aside is left
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(prunekit.load(tmp_path / "sv").eval()(x), new.eval()(x))


def test_a_description_too_large_to_build_and_a_weights_mismatch_are_one_clear_line(tmp_path):
    from safetensors.torch import load_file, save_file

    prunekit.save(prunekit.create_model("lenet", 10, 1, 8), tmp_path / "ck", input_shape=(1, 8, 8))
    tensors = load_file(tmp_path / "ck" / "model.safetensors")
    tensors.pop("0.bias")
    save_file(tensors, tmp_path / "ck" / "model.safetensors")
    with pytest.raises(PrunekitError, match='^checkpoint .*ck does not match its model: missing key "0.bias"'):
        load_checkpoint(tmp_path / "ck")
    desc = json.loads((tmp_path / "ck" / "model.json").read_text())
    for classes in (10**12, 2 * 10**7):  # impossible to allocate, and 6 GiB: possible, but minutes and the memory
        desc["model"]["num_classes"] = classes
        (tmp_path / "ck" / "model.json").write_text(json.dumps(desc))
        with pytest.raises(PrunekitError, match=r"ck/model.json describes a lenet model of [0-9.]+ GiB .* beside "
                                                r"0.1 MiB of weights; the file is damaged or edited"):
            load_checkpoint(tmp_path / "ck")


def test_a_description_that_cannot_be_sized_first_and_fails_to_allocate_is_one_clear_line(tmp_path, monkeypatch):
    import prunekit.io.checkpoint as checkpoint_module

    prunekit.save(prunekit.create_model("lenet", 10, 1, 8), tmp_path / "ck", input_shape=(1, 8, 8))
    desc = json.loads((tmp_path / "ck" / "model.json").read_text())
    desc["model"]["num_classes"] = 10**12
    (tmp_path / "ck" / "model.json").write_text(json.dumps(desc))
    monkeypatch.setattr(checkpoint_module, "parameter_bytes", lambda spec: None)  # as for a model meta cannot build
    with pytest.raises(PrunekitError, match=r"ck/model.json describes a lenet model too large to build in memory"):
        load_checkpoint(tmp_path / "ck")


def test_a_network_pruned_with_exclude_and_pruned_again_saves_a_loadable_checkpoint(tmp_path):
    """The second pruning may cut the layer the first one excluded: the composed plan must not exclude it."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, 8, 8)
    once = prunekit.prune(prunekit.create_model("lenet", 10, 1, 8), x, ratio=0.3, exclude=["0"])
    twice = prunekit.prune(once, x, ratio=0.3)
    prunekit.save(twice, tmp_path / "ck", input_shape=(1, 8, 8))
    loaded = prunekit.load(tmp_path / "ck")
    assert torch.equal(loaded.eval()(x), twice.eval()(x))


def test_a_model_of_token_ids_pruned_saved_and_loaded_replays_its_plan_on_token_ids(tmp_path):
    class EmbNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.fc1, self.fc = nn.Embedding(50, 16), nn.Linear(16, 24), nn.Linear(24, 5)

        def forward(self, x):
            return self.fc(torch.relu(self.fc1(self.emb(x).mean(1))))

    torch.manual_seed(0)
    x = torch.randint(0, 50, (2, 7))
    pruned = prunekit.prune(EmbNet(), x, ratio=0.5)
    prunekit.save(pruned, tmp_path / "ck")
    assert json.loads((tmp_path / "ck" / "model.json").read_text())["input_dtype"] == "int64"
    ckpt = load_checkpoint(tmp_path / "ck", model=EmbNet())
    assert torch.equal(ckpt.model(x), pruned.eval()(x)) and ckpt.example_inputs(3).dtype == torch.int64
    desc = json.loads((tmp_path / "ck" / "model.json").read_text())
    desc["input_dtype"] = "os.system"
    (tmp_path / "ck" / "model.json").write_text(json.dumps(desc))
    with pytest.raises(PrunekitError, match="'input_dtype' must be one of float32, .*, got 'os.system'"):
        load_checkpoint(tmp_path / "ck", model=EmbNet())


def test_a_zoo_model_saves_without_an_input_shape_given(tmp_path):
    """create_model records the input (channels and size): save needs nothing more."""
    prunekit.save(prunekit.create_model("lenet", 10, 1, 8), tmp_path / "ck")
    assert load_checkpoint(tmp_path / "ck").input_shape == (1, 8, 8)


def test_a_model_fed_uint8_images_keeps_loading(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.conv(x.float()).mean((2, 3)))

    x = torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8)
    pruned = prunekit.prune(Net(), x, ratio=0.5)
    prunekit.save(pruned, tmp_path / "ck")
    assert torch.equal(load_checkpoint(tmp_path / "ck", model=Net()).model(x), pruned.eval()(x))
