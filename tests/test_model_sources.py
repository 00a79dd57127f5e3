"""Model sources by name (timm:, hf:, ultralytics:), a user's own weights on any model, and the CLI on them."""

import json
import sys

import pytest
import torch
import yaml
from safetensors.torch import save_file

import prunekit
from prunekit.cli.main import main
from prunekit.errors import PrunekitError, UnknownNameError
from prunekit.io import load_checkpoint, save_checkpoint
from prunekit.models import spec_of

TINY_BERT = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 32}
TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
            "patch_size": 8}


def _round_trip(model, shape, folder, x=None):
    """Save ``model`` (eval mode), load it back by its recorded spec, assert exactly equal outputs."""
    model.eval()
    save_checkpoint(folder, model, input_shape=shape)
    loaded = load_checkpoint(folder).model
    x = torch.randn(2, *shape) if x is None else x
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    return loaded


# ------------------------------------------------------------------------------------------ weights
def _save_weights(model, path):
    if str(path).endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("name,channels", [("lenet", 1), ("torchvision:resnet18", 1)])
def test_weights_file_loads_onto_a_model_built_by_name(tmp_path, suffix, name, channels):
    torch.manual_seed(0)
    trained = prunekit.create_model(name, 10, channels, 16).eval()
    inner = trained[1] if name.startswith("torchvision") else trained  # torchvision's own model, without the adapter
    path = _save_weights(inner, tmp_path / f"w{suffix}")
    torch.manual_seed(1)
    model = prunekit.create_model(name, 10, channels, 16, weights=path).eval()
    x = torch.randn(2, channels, 16, 16)
    if name == "lenet":
        assert torch.equal(model(x), trained(x))
    else:  # the torchvision model's weights are the file's; the 1->3 channel adapter has none
        assert all(torch.equal(a, b) for a, b in zip(model[1].state_dict().values(), inner.state_dict().values()))


def test_weights_errors_name_the_file(tmp_path):
    model = prunekit.create_model("lenet", 10, 1, 8)
    with pytest.raises(PrunekitError, match="does not exist"):
        prunekit.create_model("lenet", 10, 1, 8, weights=tmp_path / "none.pt")
    other = _save_weights(prunekit.create_model("lenet", 3, 1, 8), tmp_path / "three.safetensors")
    with pytest.raises(PrunekitError, match=r"three.safetensors does not fit lenet: .* is \[3\] in the file, \[10\] in the model"):
        prunekit.create_model("lenet", 10, 1, 8, weights=other)
    partial = dict(list(model.state_dict().items())[:-2])  # the classifier's weight and bias left out
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(PrunekitError, match=r"partial.pt does not fit lenet: 2 missing keys .* 1 unexpected \(extra.weight\)"):
        prunekit.create_model("lenet", 10, 1, 8, weights=tmp_path / "partial.pt")
    torch.save(model, tmp_path / "pickled.pt")  # a whole pickled model: refused, nothing unpickled
    with pytest.raises(PrunekitError, match="pickled.pt is not a plain state dict") as err:
        prunekit.create_model("lenet", 10, 1, 8, weights=tmp_path / "pickled.pt")
    assert "\n" not in str(err.value)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PrunekitError, match="bad.safetensors is not a readable safetensors file"):
        prunekit.create_model("lenet", 10, 1, 8, weights=tmp_path / "bad.safetensors")


def test_nested_and_data_parallel_state_dicts_load(tmp_path):
    torch.manual_seed(0)
    trained = prunekit.create_model("lenet", 10, 1, 8).eval()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}},
               tmp_path / "w.pt")
    model = prunekit.create_model("lenet", 10, 1, 8, weights=tmp_path / "w.pt").eval()
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(model(x), trained(x))


# ------------------------------------------------------------------------------- missing extras
@pytest.mark.parametrize("name,blocked,extra", [
    ("timm:resnet18", ["timm"], "timm"),
    ("hf:bert", ["transformers"], "transformers"),
    ("ultralytics:yolov8n.yaml", ["ultralytics", "ultralytics.nn.tasks"], "ultralytics"),
])
def test_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys, name, blocked, extra):
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(PrunekitError) as err:
        prunekit.create_model(name)
    assert f"pip install 'prunekit[{extra}]'" in str(err.value) and "\n" not in str(err.value)
    code = main(["prune", "--model", name, "--input-shape", "3", "32", "32", "--ratio", "0.3",
                 "--out", str(tmp_path / "o")])
    err_text = capsys.readouterr().err.strip()
    assert code == 2 and err_text.count("\n") == 0 and f"prunekit[{extra}]" in err_text


# ------------------------------------------------------------------------------------------- timm
def test_timm_model_builds_saves_and_loads_exactly(tmp_path):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    model = prunekit.create_model("timm:resnet10t", 5, 1, 32)
    assert spec_of(model).name == "timm:resnet10t"
    assert model.eval()(torch.randn(1, 1, 32, 32)).shape == (1, 5)
    pruned = prunekit.prune(model, torch.zeros(1, 1, 32, 32), ratio=0.3)
    _round_trip(pruned, (1, 32, 32), tmp_path / "ck")


def test_timm_vit_is_built_for_the_input_size(tmp_path):
    pytest.importorskip("timm")
    model = prunekit.create_model("timm:vit_tiny_patch16_224", 3, 3, 32, depth=1)
    assert spec_of(model).kwargs == {"depth": 1}
    _round_trip(model, (3, 32, 32), tmp_path / "ck")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_timm_weights_file(tmp_path, suffix):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    trained = timm.create_model("resnet10t", num_classes=4).eval()  # as a user trains it with timm
    path = _save_weights(trained, tmp_path / f"w{suffix}")
    model = prunekit.create_model("timm:resnet10t", 4, 3, 32, weights=path).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(model(x), trained(x))
    with pytest.raises(PrunekitError, match=f"w{suffix} does not fit timm:resnet10t"):
        prunekit.create_model("timm:resnet10t", 10, 3, 32, weights=path)


def test_timm_refuses_downloads_and_unknown_names():
    pytest.importorskip("timm")
    with pytest.raises(PrunekitError, match="pretrained may not be given"):
        prunekit.create_model("timm:resnet10t", pretrained=True)
    with pytest.raises(UnknownNameError, match="unknown timm model 'resnet10x'.*resnet10t"):
        prunekit.create_model("timm:resnet10x")
    with pytest.raises(UnknownNameError, match="unknown timm model"):
        prunekit.create_model("timm:hf-hub:someone/model")


# ------------------------------------------------------------------------------------ transformers
def test_hf_sequence_classifier_from_a_config_file(tmp_path):
    pytest.importorskip("transformers")
    config = tmp_path / "bert" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps(TINY_BERT))
    torch.manual_seed(0)
    model = prunekit.create_model(f"hf:{config}", 3)
    spec = spec_of(model)
    assert spec.name == "hf:bert" and spec.kwargs["task"] == "sequence-classification"
    assert spec.kwargs["config"]["hidden_size"] == 32  # the config is recorded: the checkpoint needs no file
    config.unlink()
    tokens = torch.randint(0, 100, (2, 16))
    _round_trip(model, (16,), tmp_path / "ck", x=tokens)
    assert model(tokens).shape == (2, 3)


def test_hf_image_classifier_adapts_channels_and_size_and_takes_weights(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = prunekit.create_model("hf:vit", 4, 1, 16, **TINY_VIT)
    assert model.eval()(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    _round_trip(model, (1, 16, 16), tmp_path / "ck")
    config = transformers.ViTConfig(**TINY_VIT, num_channels=1, image_size=16, num_labels=4)
    theirs = transformers.ViTForImageClassification(config).eval()  # trained with transformers: keys without a wrapper
    loaded = prunekit.create_model("hf:vit", 4, 1, 16, weights=_save_weights(theirs, tmp_path / "w.safetensors"),
                                   **TINY_VIT).eval()
    x = torch.randn(1, 1, 16, 16)
    assert torch.equal(loaded(x), theirs(pixel_values=x).logits)


def test_hf_refuses_remote_code_and_unknown_types(tmp_path):
    pytest.importorskip("transformers")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**TINY_BERT, "auto_map": {"AutoModel": "evil.Model"}}))
    with pytest.raises(PrunekitError, match="auto_map would load code"):
        prunekit.create_model(f"hf:{config}")
    with pytest.raises(PrunekitError, match="attn_implementation must be eager or sdpa"):
        prunekit.create_model("hf:bert", attn_implementation="kernels-community/flash-attn", **TINY_VIT)
    with pytest.raises(PrunekitError, match="unknown transformers model type 'no_such_arch'"):
        prunekit.create_model("hf:no_such_arch")
    with pytest.raises(PrunekitError, match="does not exist"):
        prunekit.create_model(f"hf:{tmp_path / 'missing.json'}")


# -------------------------------------------------------------------------------------- ultralytics
def test_yolo_from_its_yaml_prunes_saves_and_loads_exactly(tmp_path):
    pytest.importorskip("ultralytics")
    torch.manual_seed(0)
    model = prunekit.create_model("ultralytics:yolov8n.yaml", 3, 3, 32).eval()
    x = torch.zeros(1, 3, 32, 32)
    shape = model(x).shape
    pruned = prunekit.prune(model, x, ratio=0.3)
    assert pruned(x).shape == shape and prunekit.count(pruned, x).macs < prunekit.count(model, x).macs
    _round_trip(pruned, (3, 32, 32), tmp_path / "ck")


def test_yolo_custom_yaml_is_recorded_and_checked(tmp_path):
    pytest.importorskip("ultralytics")
    from prunekit.models.sources.ultralytics_models import bundled_yaml

    cfg = bundled_yaml("yolov8n.yaml", "test")
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    model = prunekit.create_model(f"ultralytics:{path}", 2, 3, 32)
    assert spec_of(model).name == "ultralytics:mine.yaml" and spec_of(model).kwargs["cfg"]["nc"] == 80
    path.unlink()
    _round_trip(model, (3, 32, 32), tmp_path / "ck")
    marker = tmp_path / "MARKER"
    evil = dict(cfg, activation=f"__import__('os').system('touch {marker}')")
    with pytest.raises(PrunekitError, match="activation must be a torch.nn class call"):
        prunekit.create_model("ultralytics:mine.yaml", cfg=evil)
    evil = dict(cfg, backbone=[[-1, 1, "torch_safe_load", [str(tmp_path / "x.pt")]]] + cfg["backbone"][1:])
    with pytest.raises(PrunekitError, match="'torch_safe_load' is not a layer class"):
        prunekit.create_model("ultralytics:mine.yaml", cfg=evil)
    with pytest.raises(UnknownNameError, match="no such Ultralytics model yaml"):
        prunekit.create_model("ultralytics:yolov99n.yaml")
    assert not marker.exists()


# -------------------------------------------------------------------------------------------- CLI
DIGITS_16 = ["--dataset", "digits", "--image-size", "16", "--train-subset", "128", "--test-subset", "64", "--quiet"]


def test_cli_train_run_and_prune_a_timm_model(tmp_path):
    pytest.importorskip("timm")
    assert main(["train", "--model", "timm:resnet10t", "--epochs", "1", "--out", str(tmp_path / "t"), *DIGITS_16]) == 0
    assert json.loads((tmp_path / "t" / "model.json").read_text())["model"]["name"] == "timm:resnet10t"
    assert main(["run", "--model", "timm:resnet10t", "--epochs", "1", "--step", "12", "--percent", "0.3",
                 "--out", str(tmp_path / "r"), *DIGITS_16]) == 0
    assert (tmp_path / "r" / "pruned" / "model.safetensors").exists()
    weights = _save_weights(load_checkpoint(tmp_path / "t").model, tmp_path / "mine.safetensors")
    assert main(["prune", "--model", "timm:resnet10t", "--weights", str(weights), "--ratio", "0.3",
                 "--out", str(tmp_path / "p"), *DIGITS_16]) == 0
    pruned = load_checkpoint(tmp_path / "p")
    assert pruned.metrics["macs"] < json.loads((tmp_path / "t" / "metrics.json").read_text())["macs"]
    assert pruned.meta["parent"] == "timm:resnet10t"


def test_cli_prunes_an_hf_model_without_data(tmp_path):
    pytest.importorskip("transformers")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_BERT))
    assert main(["prune", "--model", f"hf:{config}", "--num-classes", "2", "--input-shape", "16", "--ratio", "0.3",
                 "--out", str(tmp_path / "bert"), "--quiet"]) == 0
    ckpt = load_checkpoint(tmp_path / "bert")
    assert ckpt.input_shape == (16,) and ckpt.model(torch.randint(0, 100, (1, 16))).shape == (1, 2)
    assert main(["prune", "--model", "hf:bert", "--ratio", "0.3", "--out", str(tmp_path / "x")]) == 2


def test_cli_prunes_a_yolo_yaml_without_data(tmp_path):
    pytest.importorskip("ultralytics")
    assert main(["prune", "--model", "ultralytics:yolov8n.yaml", "--input-shape", "3", "32", "32", "--ratio", "0.3",
                 "--out", str(tmp_path / "yolo"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "yolo" / "metrics.json").read_text())
    assert metrics["macs"] > 0 and "test_accuracy" not in metrics
    assert load_checkpoint(tmp_path / "yolo").model(torch.zeros(1, 3, 32, 32)).shape[-1] == 21
    # its head caches anchors on the first call: TorchScript's trace check failed on that ("graphs differed")
    assert main(["export", "--checkpoint", str(tmp_path / "yolo"), "--format", "torchscript",
                 "--out", str(tmp_path / "yolo.pt")]) == 0
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(torch.jit.load(str(tmp_path / "yolo.pt"))(x), load_checkpoint(tmp_path / "yolo").model(x))
