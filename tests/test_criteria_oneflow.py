"""The OneFlow platform's criteria: bn_similarity, conv_similarity (vs fpgm), conv_threshold, and its names as aliases."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import prunekit
from prunekit.algorithms.selection import lowest
from prunekit.criteria import get_criterion, list_criteria, score_group
from prunekit.criteria.similarity import greedy_redundancy_order
from prunekit.resources import count
from prunekit.structure import analyze

ONEFLOW = ["bn", "conv_avg", "conv_all", "conv_max", "random", "conv_threshold", "conv_similarity", "bn_similarity"]
ALIASES = {"bn": "bn_scale", "conv_avg": "mean_abs", "conv_all": "l1", "conv_max": "max_abs"}


def _net(filters: torch.Tensor | None = None, gammas: torch.Tensor | None = None, bn: bool = True) -> nn.Module:
    """conv(2 -> n, 1x1) [-> BN] -> ReLU -> conv(n -> 3): one group of n channels with hand-set values."""
    n = len(filters) if filters is not None else len(gammas)
    layers = [nn.Conv2d(2, n, 1, bias=False)]
    if bn:
        layers.append(nn.BatchNorm2d(n))
    layers += [nn.ReLU(), nn.Conv2d(n, 3, 1)]
    net = nn.Sequential(*layers).eval()
    with torch.no_grad():
        if filters is not None:
            net[0].weight.copy_(filters.view(n, 2, 1, 1))
        if gammas is not None:
            net[1].weight.copy_(gammas)
    return net


def _scores(net: nn.Module, criterion: str, **kw) -> torch.Tensor:
    structure = analyze(net, torch.randn(1, 2, 4, 4))
    return score_group(structure, structure.groups[0].name, criterion, **kw)


def test_every_name_is_registered_and_aliases_are_the_same_criterion():
    assert set(ONEFLOW) <= set(list_criteria())
    for alias, target in ALIASES.items():
        assert get_criterion(alias) is get_criterion(target)


@pytest.mark.parametrize("criterion", ONEFLOW + ["fpgm"])
def test_scores_one_value_per_channel(criterion):
    net = _net(torch.randn(6, 2), torch.rand(6) + 0.1)
    scores = _scores(net, criterion)
    assert scores.shape == (6,) and torch.isfinite(scores).all()


def test_bn_similarity_removes_the_closer_scale_of_each_near_pair():
    gammas = torch.tensor([1.0, 0.99, 0.5, 2.0, 0.1])
    # 0.99 goes first (closest pair, smaller of the two), then 0.1 (0.5 <-> 0.1), then 0.5, then 1.0; 2.0 stays
    assert _scores(_net(torch.randn(5, 2), gammas), "bn_similarity").tolist() == [3, 0, 2, 4, 1]


def test_bn_similarity_keeps_a_group_without_batchnorm_whole():
    assert _scores(_net(torch.randn(4, 2), bn=False), "bn_similarity") is None


def _reference_order(features: torch.Tensor) -> list[int]:
    """The platform's greedy loop as intended (original indices), written plainly: the removal order."""
    alive, order = list(range(len(features))), []
    while len(alive) > 1:
        best = None
        for i in alive:
            d = min(float(((features[i] - features[j]) ** 2).sum()) for j in alive if j != i)
            key = (d, float(features[i].norm()), i)
            best = key if best is None or key < best else best
        order.append(best[2])
        alive.remove(best[2])
    return order + alive


@pytest.mark.parametrize("seed", range(5))
def test_greedy_order_matches_a_plain_reference(seed):
    features = torch.randn(9, 3, generator=torch.Generator().manual_seed(seed))
    scores = greedy_redundancy_order(features)
    assert sorted(range(9), key=lambda i: float(scores[i])) == _reference_order(features)


def test_conv_similarity_differs_from_fpgm():
    # two near-identical filters far from the rest, and one filter at the centre of the others
    filters = torch.tensor([[3.0, 3.0], [3.0, 2.9], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [1.0, 2.0]])
    net = _net(filters, torch.ones(7))
    sim = _scores(net, "conv_similarity")
    fpgm = _scores(net, "fpgm")
    assert lowest(sim, 1) == [1]  # one of the duplicates goes (the smaller)
    assert lowest(fpgm, 1) == [2]  # FPGM removes the filter at the geometric median
    assert 1 not in lowest(fpgm, 3) and 2 not in lowest(sim, 2)


def test_conv_similarity_works_on_absolute_weights():
    filters = torch.tensor([[1.0, -2.0], [-1.0, 2.0], [0.3, 0.1], [3.0, 3.0]])
    assert lowest(_scores(_net(filters, torch.ones(4)), "conv_similarity"), 1) in ([0], [1])  # |w| equal: a pair


def test_conv_threshold_counts_weights_above_the_platform_threshold():
    filters = torch.tensor([[0.05, 0.05], [0.07, 0.01], [0.5, 0.5], [0.08, 0.09]])
    scores = _scores(_net(filters, torch.ones(4)), "conv_threshold")
    assert scores.round().tolist() == [0, 1, 2, 2]
    over = _scores(_net(filters, torch.ones(4)), "conv_threshold", threshold=0.3)
    assert over.round().tolist() == [0, 0, 2, 0]


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("criterion", ["conv_threshold", "conv_similarity", "bn_similarity"])  # the rest: aliases
def test_prunes_zoo_models(name, scope, criterion):
    model = prunekit.create_model(name, 10, 3, 16)
    x = torch.randn(1, 3, 16, 16)
    pruned = prunekit.prune(model, x, ratio=0.5, criterion=criterion, scope=scope)
    before, after = count(model, x), count(pruned, x)
    with torch.no_grad():
        assert pruned.eval()(x).shape == (1, 10)
    assert after.params < 0.8 * before.params


@pytest.mark.parametrize("alias,target", sorted(ALIASES.items()))
def test_an_alias_prunes_exactly_as_its_target(alias, target):
    model = prunekit.create_model("resnet20", 10, 3, 16)
    x = torch.randn(1, 3, 16, 16)
    a = prunekit.prune(model, x, ratio=0.4, criterion=alias, scope="global")
    b = prunekit.prune(model, x, ratio=0.4, criterion=target, scope="global")
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))


def test_prune_command_takes_the_platform_names(tmp_path):
    from prunekit.cli.main import main

    base = tmp_path / "resnet"
    assert main(["train", "--model", "resnet20", "--dataset", "digits", "--train-subset", "64", "--test-subset", "64",
                 "--epochs", "1", "--out", str(base), "--quiet"]) == 0
    for criterion in ("bn", "bn_similarity", "conv_similarity"):
        out = tmp_path / criterion
        assert main(["prune", "--checkpoint", str(base), "--criterion", criterion, "--ratio", "0.5",
                     "--out", str(out)]) == 0
        after = json.loads((out / "metrics.json").read_text())
        assert after["params"] < json.loads((base / "metrics.json").read_text())["params"]
