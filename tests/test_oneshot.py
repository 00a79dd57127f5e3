"""One-shot pruning: every criterion, local and global, ratios and budgets, torchvision models, save/load."""

import copy
import pickle

import pytest
import torch
import torchvision

import prunekit
from prunekit.criteria import list_criteria
from prunekit.errors import PrunekitError
from prunekit.resources import count

CRITERIA = ["l1", "l2", "mean_abs", "max_abs", "threshold_count", "bn_scale", "taylor", "fpgm", "random", "neuron"]


def _data(shape, classes=10, n=4, batch=8):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, *shape, generator=gen), torch.randint(0, classes, (batch,), generator=gen)) for _ in range(n)]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _check_pruned(model, pruned, x):
    before, after = count(model, x), count(pruned, x)
    with torch.no_grad():
        assert pruned.eval()(x).shape == model.eval()(x).shape
    assert after.macs < before.macs and after.params < before.params
    return before, after


def test_registry_has_every_criterion():
    assert set(CRITERIA) <= set(list_criteria())


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_every_criterion_prunes_zoo_models_at_half(name, scope, criterion):
    model = prunekit.create_model(name, 10, 3, 16)
    x = torch.randn(1, 3, 16, 16)
    state = _state(model)
    data = _data((3, 16, 16)) if criterion == "taylor" else None
    pruned = prunekit.prune(model, x, ratio=0.5, criterion=criterion, scope=scope, data=data)
    before, after = _check_pruned(model, pruned, x)
    assert after.params < 0.8 * before.params
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), "input model changed"


TORCHVISION = ["resnet18", "mobilenet_v2", "densenet121", "shufflenet_v2_x1_0", "efficientnet_b0",
               "regnet_x_400mf", "googlenet", "convnext_tiny"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_prune_at_0_3(name):
    kw = dict(aux_logits=False, init_weights=True) if name == "googlenet" else {}
    model = torchvision.models.get_model(name, weights=None, num_classes=10, **kw).eval()
    x = torch.randn(1, 3, 64, 64)
    state = _state(model)
    pruned = prunekit.prune(model, x, ratio=0.3, criterion="l2")
    _check_pruned(model, pruned, x)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_save_then_load_onto_a_fresh_torchvision_resnet18(tmp_path, monkeypatch):
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    pruned = prunekit.prune(model, x[:1], ratio=0.4, criterion="l1").eval()
    prunekit.save(pruned, tmp_path / "ck")

    def refuse(*a, **k):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = prunekit.load(tmp_path / "ck", model=torchvision.models.resnet18(num_classes=10)).eval()
    with torch.no_grad():
        assert (loaded(x) - pruned(x)).abs().max().item() < 1e-5


def test_save_load_zoo_model_twice_pruned(tmp_path):
    model = prunekit.create_model("resnet20", 10, 3, 16).eval()
    x = torch.randn(2, 3, 16, 16)
    once = prunekit.prune(model, x[:1], ratio=0.3, criterion="l2")
    twice = prunekit.prune(once, x[:1], ratio=0.3, criterion="fpgm").eval()
    prunekit.save(twice, tmp_path / "ck")
    loaded = prunekit.load(tmp_path / "ck").eval()
    with torch.no_grad():
        assert (loaded(x) - twice(x)).abs().max().item() < 1e-5


@pytest.mark.parametrize("resource", ["macs", "params", "flops"])
@pytest.mark.parametrize("scope", ["local", "global"])
def test_budget_ratio_is_met(resource, scope):
    model = prunekit.create_model("vgg11", 10, 3, 16, width_mult=0.5)
    x = torch.randn(1, 3, 16, 16)
    pruned = prunekit.prune(model, x, budget_ratio=0.5, resource=resource, scope=scope, criterion="l1")
    before, after = count(model, x).get(resource), count(pruned, x).get(resource)
    assert after <= 0.5 * before
    assert after > 0.3 * before  # it prunes to the budget, not far past it


def test_absolute_budget_in_params():
    model = prunekit.create_model("resnet20", 10, 3, 16)
    x = torch.randn(1, 3, 16, 16)
    pruned = prunekit.prune(model, x, budget=100_000, resource="params")
    assert count(pruned, x).params <= 100_000


def test_round_to_keeps_multiples_and_exclude_keeps_layers():
    model = prunekit.create_model("vgg11", 10, 3, 16, width_mult=0.5)
    x = torch.randn(1, 3, 16, 16)
    pruned = prunekit.prune(model, x, ratio=0.45, round_to=8, exclude=["features.0.0"])
    convs = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 32  # excluded: kept whole
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert any(c.out_channels < 256 for c in convs[1:])


@pytest.mark.parametrize("kwargs,message", [
    (dict(ratio=1.0), "ratio"),
    (dict(ratio=-0.1), "ratio"),
    (dict(ratio=0.5, budget_ratio=0.5), "exactly one"),
    (dict(ratio=0.5, criterion="no_such"), "valid criterions: .*l2"),
    (dict(ratio=0.5, scope="everywhere"), "scope"),
    (dict(budget=10, resource="macs"), "below what this model can reach"),
    (dict(ratio=0.5, criterion="taylor"), "needs data"),
    (dict(budget=float("nan")), "^--budget must be a finite number, got nan$"),
    (dict(budget_ratio=float("inf")), "^--budget-ratio must be a finite number, got inf$"),
    (dict(ratio=float("nan")), "^--ratio must be a finite number"),
    (dict(ratio=0.5, threshold=float("nan")), "^--threshold must be a finite number"),
    (dict(ratio=0.5, gradient_batches=0), "^--gradient-batches must be at least 1, got 0$"),
    (dict(ratio="0.5"), "ratio needs a number, got '0.5'"),
])
def test_bad_input_is_a_clear_error_and_leaves_the_model(kwargs, message):
    model = prunekit.create_model("lenet", 10, 1, 8)
    state = _state(model)
    with pytest.raises(PrunekitError, match=message):
        prunekit.prune(model, torch.randn(1, 1, 8, 8), **kwargs)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_neuron_criterion_prunes_a_fully_connected_net():
    model = prunekit.create_model("dnn_4", 10, 1, 8)
    x = torch.randn(1, 1, 8, 8)
    pruned = prunekit.prune(model, x, ratio=0.5, criterion="neuron")
    widths = [m.out_features for m in pruned.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 128, 128, 10]


def test_l1_removes_the_smallest_filters():
    model = prunekit.create_model("helloworld", 10, 1, 8)
    conv = model[0][0]
    with torch.no_grad():
        conv.weight.mul_(0.01)
        conv.weight[[1, 5, 9]] *= 1000  # three clearly large filters
    pruned = prunekit.prune(model, torch.randn(1, 1, 8, 8), ratio=0.8, criterion="l1")
    kept = pruned[0][0].weight
    assert kept.shape[0] == 3  # keeps floor(0.2 x 16) filters
    big = {tuple(conv.weight[i].flatten()[:3].tolist()) for i in (1, 5, 9)}
    assert big <= {tuple(w.flatten()[:3].tolist()) for w in kept}


def test_network_slimming_prunes_by_bn_scale_globally():
    from prunekit.data import load_dataset
    from prunekit.training import TrainConfig, train

    data = load_dataset("digits")
    model = prunekit.create_model("helloworld", 10, 1, 8)
    train(model, data.train, TrainConfig(epochs=2, sparsity=1e-3), progress=False)
    pruned = prunekit.prune(model, data.example_inputs(), ratio=0.5, criterion="bn_scale", scope="global")
    assert count(pruned, data.example_inputs()).params < count(model, data.example_inputs()).params


def test_input_model_is_deep_copied():
    model = prunekit.create_model("lenet", 10, 1, 8)
    twin = copy.deepcopy(model)
    prunekit.prune(model, torch.randn(1, 1, 8, 8), ratio=0.5)
    assert [p.shape for p in model.parameters()] == [p.shape for p in twin.parameters()]


def test_a_ratio_that_removes_no_channel_is_refused_not_returned_unpruned():
    import prunekit
    from prunekit.errors import PrunekitError

    model = prunekit.create_model("resnet20", 10, 1, 8, width=8)
    with pytest.raises(PrunekitError, match="ratio 0.3 removes no channel: .* round_to 64"):
        prunekit.prune(model, torch.zeros(1, 1, 8, 8), ratio=0.3, round_to=64)


def test_gradient_criteria_refuse_labels_the_model_cannot_have_in_one_line():
    import prunekit
    from prunekit.errors import PrunekitError

    model, x = prunekit.create_model("lenet", 10, 1, 8), torch.zeros(4, 1, 8, 8)
    with pytest.raises(PrunekitError, match="label 12 .* model of 10 classes"):
        prunekit.prune(model, x, ratio=0.3, criterion="taylor", data=[(x, torch.tensor([0, 1, 2, 12]))])
    with pytest.raises(PrunekitError, match="does not fit the model's outputs \\(4, 10\\)"):
        prunekit.prune(model, x, ratio=0.3, criterion="taylor", data=[(x, torch.zeros(3, dtype=torch.long))])
    # soft labels (class probabilities) are targets cross-entropy takes
    prunekit.prune(model, x, ratio=0.3, criterion="taylor", data=[(x, torch.full((4, 10), 0.1))])
