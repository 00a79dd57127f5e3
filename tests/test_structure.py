"""prunekit.structure: the public interface, plans, exclude/round_to, errors and the model zoo."""

from __future__ import annotations

import copy
import json
import time

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import PrunekitError
from prunekit.structure import (
    ChannelGroup,
    ChannelSlice,
    Member,
    ModelStructure,
    PruningPlan,
    StructureError,
    analyze,
    apply_plan,
)

try:
    from test_structure_toys import TOYS, assert_zero_equivalent, n_params, outputs_close, prune_fraction
except ImportError:  # tests/ imported as a package
    from tests.test_structure_toys import TOYS, assert_zero_equivalent, n_params, outputs_close, prune_fraction

X32 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def resnet20(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return prunekit.create_model("resnet20", 10, 3, 32).eval()


def _randomise_bn(model: nn.Module) -> None:
    """Give BatchNorm layers non-trivial statistics so that equivalence checks mean something."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


# ---------------------------------------------------------------------------- interface
def test_interface_on_resnet20():
    model = resnet20()
    s = analyze(model, X32)
    assert isinstance(s, ModelStructure) and s.model is model and s.warnings == []
    names = [g.name for g in s.groups]
    assert names[0] == "conv1" and "layers.0.conv1" in names and "fc" not in names
    g = s.group("layers.0.conv1")
    assert isinstance(g, ChannelGroup) and g.channels == g.original_channels == 16 and g.round_to == 1
    assert g.members == (Member("layers.0.conv1", "out"), Member("layers.0.bn1", "out"), Member("layers.0.conv2", "in"))
    assert s.removable("layers.0.conv1") == 15
    stem = {m.layer for m in s.group("conv1").members}  # the stage-1 residual stream
    assert {"conv1", "bn1", "layers.0.bn2", "layers.2.conv2", "layers.3.conv1", "layers.3.shortcut.0"} <= stem


def test_slices_describe_parameters():
    model = resnet20()
    s = analyze(model, X32)
    slices = s.slices("layers.3.conv1")
    assert all(isinstance(sl, ChannelSlice) for sl in slices)
    by = {(sl.layer, sl.param_name, sl.role): sl for sl in slices}
    w = by[("layers.3.conv1", "weight", "out")]
    assert w.layer_type == "Conv2d" and w.dim == 0 and w.param is model.layers[3].conv1.weight
    assert w.index.dtype == torch.long and w.index.shape == (32, 1) and w.channels.tolist() == list(range(32))
    assert by[("layers.3.bn1", "weight", "out")].layer_type == "BatchNorm2d"
    assert by[("layers.3.conv2", "weight", "in")].dim == 1
    # a typical criterion: L2 norm of each channel's output weights
    norms = w.param.detach().index_select(w.dim, w.index.flatten()).flatten(1).norm(dim=1)
    assert norms.shape == (32,)
    s.prune("layers.3.conv1", [0, 31])
    w2 = [sl for sl in s.slices("layers.3.conv1") if sl.layer == "layers.3.conv1" and sl.param_name == "weight"][0]
    assert w2.index.shape == (30, 1) and w2.param.shape[0] == 30


def test_prune_is_physical_and_exact_on_resnet20():
    model = resnet20()
    _randomise_bn(model)
    s = analyze(model, X32)
    for g in s.groups:
        assert_zero_equivalent(s, X32, g.name)
    p0 = n_params(model)
    s.prune("layers.0.conv1", [0, 1, 2])
    assert model.layers[0].conv1.weight.shape == (13, 16, 3, 3)
    assert model.layers[0].bn1.running_mean.shape == (13,)
    assert model.layers[0].conv2.weight.shape == (16, 13, 3, 3)
    assert n_params(model) < p0
    assert s.group("layers.0.conv1").channels == 13
    with torch.no_grad():
        assert model(X32).shape == (1, 10)


def test_analyze_is_fast_on_resnet20():
    model = resnet20()
    analyze(model, X32)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        analyze(copy.deepcopy(model), X32)
    assert (time.perf_counter() - start) / 3 < 1.0


def test_deepcopy_of_a_structure_is_independent():
    model = resnet20()
    s = analyze(model, X32)
    c = copy.deepcopy(s)
    assert c.model is not model
    c.prune("layers.0.conv1", [0, 1])
    c.prune("conv1", [3])
    assert model.layers[0].conv1.out_channels == 16 and c.model.layers[0].conv1.out_channels == 14
    assert s.plan.groups == {} and c.plan.kept("conv1") == [i for i in range(16) if i != 3]
    with torch.no_grad():
        assert c.model(X32).shape == (1, 10)


def test_model_mode_and_requires_grad_are_restored():
    model = resnet20().train()
    model.fc.weight.requires_grad_(False)
    analyze(model, X32)
    assert model.training and model.layers[0].training and not model.fc.weight.requires_grad
    assert model.conv1.weight.requires_grad


# ---------------------------------------------------------------------------- plans
def test_plan_round_trip_on_a_fresh_model():
    model = resnet20(seed=0)
    s = analyze(model, X32)
    s.prune("layers.0.conv1", [1, 4, 9])
    s.prune("conv1", [0, 15])
    s.prune("layers.0.conv1", [0, 2])  # the same group twice: positions are current ones
    s.prune("layers.6.conv1", list(range(0, 32, 2)))
    plan = s.plan
    assert plan.kept("layers.0.conv1") == [i for i in range(16) if i not in (1, 4, 9, 0, 3)]
    assert plan.groups["conv1"].original == 16 and plan.kept("conv1") == list(range(1, 15))
    assert plan.kept("layers.1.conv1") is None

    text = json.dumps(plan.to_dict())
    restored = PruningPlan.from_dict(json.loads(text))
    fresh = resnet20(seed=123)  # different weights: only the shapes come from the plan
    s2 = apply_plan(fresh, X32, restored)
    assert s2.plan.to_dict() == plan.to_dict()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (fresh(X32) - model(X32)).abs().max() < 1e-5
    assert s2.group("layers.0.conv1").channels == 11 and s2.group("layers.0.conv1").original_channels == 16


def test_plan_keeps_counting_from_the_original():
    model = resnet20()
    s = analyze(model, X32)
    s.prune("layers.0.conv1", [0, 1])
    s2 = analyze(model, X32, plan=s.plan)  # a new analysis of the pruned model
    s2.prune("layers.0.conv1", [0])  # original channel 2
    assert s2.plan.kept("layers.0.conv1") == list(range(3, 16))
    assert s2.group("layers.0.conv1").original_channels == 16
    bad = PruningPlan.from_dict({"groups": {"layers.0.conv1": {"original": 16, "kept": [0, 1]}}})
    with pytest.raises(StructureError, match="does not match"):
        analyze(resnet20(), X32, plan=bad)


def test_apply_plan_rejects_other_models():
    s = analyze(resnet20(), X32)
    s.prune("layers.0.conv1", [0])
    plan = s.plan
    vgg = prunekit.create_model("vgg11", 10, 3, 32).eval()
    with pytest.raises(StructureError, match="layers.0.conv1"):
        apply_plan(vgg, X32, plan)
    pruned = s.model
    with pytest.raises(StructureError, match="freshly built"):
        apply_plan(pruned, X32, plan)
    with pytest.raises(StructureError):
        PruningPlan.from_dict({"groups": {"a": {"original": 4, "kept": [7]}}})


def test_plan_round_trip_through_concat_and_shuffle():
    import torchvision

    for name in ("densenet121", "shufflenet_v2_x0_5"):
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None, num_classes=5).eval()
        x = torch.randn(1, 3, 64, 64)
        s = analyze(model, x)
        prune_fraction(s, 0.3, seed=1)
        prune_fraction(s, 0.2, seed=2)
        plan = PruningPlan.from_dict(json.loads(json.dumps(s.plan.to_dict())))
        fresh = torchvision.models.get_model(name, weights=None, num_classes=5).eval()
        apply_plan(fresh, x, plan)
        fresh.load_state_dict(model.state_dict())
        with torch.no_grad():
            assert (fresh(x) - model(x)).abs().max() < 1e-5, name


# ---------------------------------------------------------------------------- exclude, round_to, names
def test_exclude_keeps_layers_whole():
    model = resnet20()
    s = analyze(model, X32, exclude=["layers.0.conv2", "layers.4"])
    names = [g.name for g in s.groups]
    assert "layers.4.conv1" not in names and "layers.0.conv1" not in names
    assert "conv1" not in names  # the stage-1 stream runs through layers.0.conv2
    for g in s.groups:
        for m in g.members:
            assert m.layer != "layers.0.conv2" and not m.layer.startswith("layers.4.")
    prune_fraction(s, 0.5)
    assert model.layers[0].conv2.weight.shape == (16, 16, 3, 3)
    assert model.layers[4].conv1.weight.shape == (32, 32, 3, 3)
    assert s.plan.exclude == ("layers.0.conv2", "layers.4")
    with pytest.raises(StructureError, match="no layer named 'layers.99'"):
        analyze(resnet20(), X32, exclude=["layers.99"])


def test_round_to():
    model = resnet20()
    s = analyze(model, X32, round_to=8)
    g = s.group("layers.0.conv1")
    assert g.round_to == 8 and s.removable(g.name) == 8
    with pytest.raises(StructureError, match="multiple of 8"):
        s.prune(g.name, [0, 1, 2])
    with pytest.raises(StructureError):
        s.prune(g.name, range(16))  # would leave nothing
    assert s.round_removal(g.name, 3) == 8
    s.prune(g.name, range(8))
    assert model.layers[0].conv1.out_channels == 8 and s.removable(g.name) == 0
    assert s.round_removal(g.name, 1) == 0
    # a width that is not a multiple (lenet's 6-channel conv) cannot be rounded: kept whole
    lenet = prunekit.create_model("lenet", 10, 1, 28).eval()
    s = analyze(lenet, torch.randn(1, 1, 28, 28), round_to=4)
    first = s.groups[0]
    assert first.channels == 6 and s.removable(first.name) == 2  # 6 -> 4 is the only choice
    with pytest.raises(StructureError):
        s.prune(first.name, [0])
    s.prune(first.name, [0, 5])
    assert s.removable(first.name) == 0


def test_legal_counts_have_one_source():
    """removable, removals, round_removal and allowed_removal agree with what prune accepts."""
    lenet = prunekit.create_model("lenet", 10, 1, 28).eval()
    s = analyze(lenet, torch.randn(1, 1, 28, 28), round_to=4)
    for g in s.groups:
        legal = s.removals(g.name)
        assert legal[0] == 0 and legal[-1] == s.removable(g.name)
        for wanted in range(g.channels + 2):
            up = [k for k in legal if k >= wanted]
            assert s.round_removal(g.name, wanted) == (up[0] if up and wanted > 0 else 0 if wanted <= 0 else legal[-1])
            assert s.allowed_removal(g.name, wanted) == max(k for k in legal if k <= wanted)
        for k in range(1, g.channels):
            ok = k in legal
            c = copy.deepcopy(s)
            if ok:
                c.prune(g.name, range(k))
            else:
                with pytest.raises(StructureError):
                    c.prune(g.name, range(k))


def test_round_to_counts_units():
    model, x = TOYS["depth_group"][0]().eval(), torch.randn(1, 3, 8, 8)
    s = analyze(model, x, round_to=8)
    g = s.group("c0")  # a unit is 4 channels (one per group of g4): two units make 8 channels
    assert g.channels == 4 and g.round_to == 2 and s.removable("c0") == 2
    s.prune("c0", [0, 3])
    assert model.c0.out_channels == 8


def test_classifier_output_is_never_pruned():
    for name in ("resnet20", "vgg11", "mobilenet_v2", "dnn_2", "lenet"):
        model = prunekit.create_model(name, 10, 3, 32).eval()
        s = analyze(model, X32)
        last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
        assert last not in [g.name for g in s.groups], name
        for g in s.groups:
            assert Member(last, "out") not in g.members
        prune_fraction(s, 0.9)
        with torch.no_grad():
            assert model(X32).shape == (1, 10)


def test_names_are_stable_after_pruning_and_reanalysis():
    a = analyze(resnet20(), X32)
    b = analyze(resnet20(seed=5), X32)
    assert [g.name for g in a.groups] == [g.name for g in b.groups]
    prune_fraction(a, 0.5)
    names = [g.name for g in a.groups]
    again = analyze(a.model, X32)
    assert [g.name for g in again.groups] == names
    assert [g.channels for g in again.groups] == [g.channels for g in a.groups]
    assert [g.members for g in again.groups] == [g.members for g in a.groups]


# ---------------------------------------------------------------------------- errors
def test_errors_are_structure_errors():
    s = analyze(resnet20(), X32)
    assert issubclass(StructureError, PrunekitError)
    with pytest.raises(StructureError, match="valid names: conv1, layers.0.conv1"):
        s.group("nope")
    with pytest.raises(StructureError, match="0..15"):
        s.prune("layers.0.conv1", [16])
    with pytest.raises(StructureError, match="integers"):
        s.prune("layers.0.conv1", ["a"])
    with pytest.raises(StructureError, match="round_to"):
        analyze(resnet20(), X32, round_to=0)


def test_untraceable_model_says_where():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(5, 2))

        def forward(self, x):
            return self.body(x)

    with pytest.raises(StructureError, match=r"module 'body.1'.*RuntimeError"):
        analyze(Broken(), X32)


# ---------------------------------------------------------------------------- the zoo
ZOO = ["resnet20", "vgg11", "mobilenet_v2", "mobilenet_v1", "lenet", "dnn_2", "alexnet", "helloworld"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_models_prune_by_half(name):
    torch.manual_seed(0)
    model = prunekit.create_model(name, 10, 3, 32).eval()
    s = analyze(model, X32)
    assert s.groups and not s.warnings
    p0 = n_params(model)
    for g in s.groups:
        k = s.round_removal(g.name, g.channels // 2)
        if k:
            s.prune(g.name, range(k))
    assert all(g.channels <= max(1, (g.original_channels + 1) // 2) for g in s.groups)
    with torch.no_grad():
        assert model(X32).shape == (1, 10)
    assert n_params(model) < p0 * 0.6


def test_zoo_model_with_grayscale_input():
    model = prunekit.create_model("resnet20", 10, 1, 28).eval()
    x = torch.randn(2, 1, 28, 28)
    s = analyze(model, x)
    prune_fraction(s, 0.5)
    with torch.no_grad():
        assert model(x).shape == (2, 10)


def test_same_output_when_loaded_into_a_planned_zoo_model():
    torch.manual_seed(0)
    model = prunekit.create_model("mobilenet_v2", 10, 3, 32).eval()
    s = analyze(model, X32, round_to=4)
    prune_fraction(s, 0.5)
    fresh = prunekit.create_model("mobilenet_v2", 10, 3, 32).eval()
    apply_plan(fresh, X32, PruningPlan.from_dict(json.loads(json.dumps(s.plan.to_dict()))))
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert outputs_close(fresh(X32), model(X32), 1e-5)


def test_hard_coded_sizes_are_caught_on_a_copy():
    class HardCoded(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 4 * 4, 3)

        def forward(self, x):
            x = torch.relu(self.c2(torch.relu(self.c1(x))))
            return self.fc(x.view(x.shape[0], 8 * 4 * 4))  # the 8 is spelled out

    x = torch.randn(2, 3, 4, 4)
    s = analyze(HardCoded().eval(), x)
    assert [g.name for g in s.groups] == ["c1"]
    assert any("c2" in w and "copy" in w for w in s.warnings), s.warnings
    unchecked = analyze(HardCoded().eval(), x, validate=False)
    assert [g.name for g in unchecked.groups] == ["c1", "c2"]
