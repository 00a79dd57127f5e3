"""prunekit.structure on torchvision classifiers: prune ~30% of every group, check exactness."""

from __future__ import annotations

import random

import pytest
import torch

torchvision = pytest.importorskip("torchvision")

try:
    from test_structure_toys import assert_zero_equivalent, check_slices, n_params, prune_fraction
except ImportError:  # tests/ imported as a package
    from tests.test_structure_toys import assert_zero_equivalent, check_slices, n_params, prune_fraction

from prunekit.structure import analyze  # noqa: E402

MODELS = [
    "resnet18", "mobilenet_v2", "densenet121", "shufflenet_v2_x1_0",
    "efficientnet_b0", "regnet_x_400mf", "googlenet", "convnext_tiny",
]


def build(name: str) -> torch.nn.Module:
    kwargs = dict(aux_logits=False, init_weights=True) if name == "googlenet" else {}
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs).eval()


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_model_prunes(name):
    model = build(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    s = analyze(model, x)
    assert not s.warnings, s.warnings
    assert sum(s.removable(g.name) > 0 for g in s.groups) >= 5
    exact = [g.name for g in s.groups if g.exact and s.removable(g.name)]
    for i, gname in enumerate(random.Random(0).sample(exact, min(3, len(exact)))):
        assert_zero_equivalent(s, x, gname, seed=i)
    p0 = n_params(model)
    assert prune_fraction(s, 0.3) > 0
    check_slices(s)
    with torch.no_grad():
        after = model(x)
    assert after.shape == before.shape and torch.isfinite(after).all()
    assert n_params(model) < 0.85 * p0


def test_shufflenet_stream_is_tied_by_the_shuffle():
    model = build("shufflenet_v2_x0_5")
    x = torch.randn(1, 3, 64, 64)
    s = analyze(model, x)
    # each block's branch is free; a stage's stream (96 channels in stage 4) is tied across its
    # blocks by shuffle + chunk into units of 8 channels of the first block's branch1 conv
    assert s.group("stage2.0.branch2.0").channels == 24
    stream = s.group("stage4.0.branch1.2")
    assert stream.channels == 12 and model.stage4[0].branch1[2].out_channels == 96
    members = {m.layer for m in stream.members}
    assert {"stage4.0.branch2.5", "stage4.3.branch2.5", "stage4.3.branch2.0", "conv5.0"} <= members
    for name in ("stage4.0.branch1.2", "stage3.1.branch2.0"):
        assert_zero_equivalent(s, x, name)
    s.prune("stage4.0.branch1.2", [0, 5])
    assert model.stage4[0].branch1[2].out_channels == 80
    assert_zero_equivalent(s, x, "stage4.0.branch1.2", seed=3)


def test_squeezenet_conv_classifier_is_kept():
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    s = analyze(model, x)
    assert "classifier.1" not in [g.name for g in s.groups]
    prune_fraction(s, 0.5)
    with torch.no_grad():
        assert model(x).shape == (1, 10)
    assert model.classifier[1].out_channels == 10


def test_vit_prunes_its_mlps_and_its_embedding_width():
    model = torchvision.models.vit_b_32(num_classes=10, image_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    s = analyze(model, x)
    names = [g.name for g in s.groups]
    assert "encoder.layers.encoder_layer_0.mlp.0" in names
    assert "conv_proj" in names and not s.warnings  # its fixed hidden_dim is rewritten after each prune
    prune_fraction(s, 0.3)
    assert model.hidden_dim == model.conv_proj.out_channels < 768
    with torch.no_grad():
        assert model(x).shape == (1, 10)
