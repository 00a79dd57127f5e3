"""The fast 'resource after removing k channels from group g' equals measuring the really pruned model."""

import copy

import pytest
import torch
from torch import nn

import prunekit
from prunekit.resources import count
from prunekit.resources.estimator import ResourceEstimator
from prunekit.structure import analyze


class ConcatNet(nn.Module):
    """Concatenation, a depthwise conv and flatten into a linear layer."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 12, 3, padding=1)
        self.dw = nn.Conv2d(20, 20, 3, padding=1, groups=20)
        self.bn = nn.BatchNorm2d(20)
        self.pw = nn.Conv2d(20, 16, 1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = torch.cat([self.a(x), self.b(x)], 1)
        x = self.pw(torch.relu(self.bn(self.dw(x))))
        return self.fc(nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


MODELS = {
    "lenet": lambda: prunekit.create_model("lenet", 10, 1, 28),
    "vgg11": lambda: prunekit.create_model("vgg11", 10, 3, 16, width_mult=0.25),
    "resnet20": lambda: prunekit.create_model("resnet20", 10, 3, 16),
    "mobilenet_v2": lambda: prunekit.create_model("mobilenet_v2", 10, 3, 16, width_mult=0.5),
    "dnn_4": lambda: prunekit.create_model("dnn_4", 10, 1, 8),
    "concat": ConcatNet,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_estimate_equals_measurement_of_the_pruned_model(name):
    model = MODELS[name]().eval()
    channels = 1 if name in ("lenet", "dnn_4") else 3
    size = {"lenet": 28, "dnn_4": 8}.get(name, 16)
    x = torch.randn(1, channels, size, size)
    structure = analyze(copy.deepcopy(model), x)
    estimator = ResourceEstimator(structure, x)
    assert estimator.exact
    assert estimator.estimate({}) == count(model, x)
    for g in structure.groups:
        for k in sorted({1, structure.removable(g.name) // 2, structure.removable(g.name)} - {0}):
            pruned = copy.deepcopy(model)
            s = analyze(pruned, x)
            s.prune(g.name, list(range(k)))
            assert estimator.estimate({g.name: k}) == count(pruned, x), (g.name, k)
    # several groups at once
    removed = {g.name: structure.removable(g.name) // 2 for g in structure.groups[:3]}
    pruned = copy.deepcopy(model)
    s = analyze(pruned, x)
    for g, k in removed.items():
        if k:
            s.prune(g, list(range(k)))
    assert estimator.estimate(removed) == count(pruned, x)


def test_count_metric_prunes_a_copy_where_shapes_cannot_tell(monkeypatch):
    """When the estimator is not exact (e.g. attention), what-ifs count a really pruned copy instead."""
    import prunekit.resources.counts as metric_module
    from prunekit.resources.counts import CountMetric

    class Inexact(ResourceEstimator):
        def __init__(self, *args):
            super().__init__(*args)
            self.exact = False

    monkeypatch.setattr(metric_module, "ResourceEstimator", Inexact)
    model, x = ConcatNet().eval(), torch.randn(1, 3, 4, 4)
    structure = analyze(copy.deepcopy(model), x)
    cost = CountMetric("macs").what_if(structure, x)
    exact = ResourceEstimator(structure, x)
    removed = {g.name: structure.removable(g.name) // 2 for g in structure.groups}
    assert cost(removed) == exact.estimate(removed).macs < cost({})
    assert [g.channels for g in structure.groups] == [g.channels for g in analyze(copy.deepcopy(model), x).groups]


def test_attention_is_counted_fused_or_not():
    """torch runs attention through fused kernels in eval mode; their matrix products count like any other."""
    from torch.nn import functional as F

    from prunekit.resources import count

    class Sdpa(torch.nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    assert count(Sdpa(), torch.randn(1, 2, 16, 8)).macs == 2 * (2 * 16 * 16 * 8)  # q @ k^T and attn @ v, 2 heads
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    projections, attention, mlp = 16 * 32 * 32 * 4, 2 * 16 * 16 * 32, 2 * 16 * 32 * 64
    assert count(torch.nn.TransformerEncoder(layer, 2), torch.randn(1, 16, 32)).macs == 2 * (projections + attention + mlp)
    assert torch.backends.mha.get_fastpath_enabled()  # left as it was
